"""Connectors applying a ``torch.nn.functional`` function or a ``torch.nn``
module chosen by name (MMRazor 1.x ``TorchFunctionalConnector`` and
``TorchNNConnector``)."""
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from mmrazor.registry import MODELS
from .connectors import BaseConnector

#: Functions of ``torch.nn.functional`` that ``TorchFunctionalConnector``
#: may apply (those of MMRazor 1.x).
FUNCTION_NAMES = ('adaptive_avg_pool2d', 'adaptive_max_pool2d', 'avg_pool2d',
                  'dropout', 'dropout2d', 'max_pool2d', 'normalize', 'relu',
                  'softmax', 'interpolate')

#: Modules of ``torch.nn`` that ``TorchNNConnector`` may wrap (those of
#: MMRazor 1.x).
MODULE_NAMES = ('AdaptiveAvgPool2d', 'AdaptiveMaxPool2d', 'AvgPool2d',
                'BatchNorm2d', 'Conv2d', 'Dropout', 'Dropout2d', 'Linear',
                'MaxPool2d', 'ReLU', 'Softmax')


@MODELS.register_module()
class TorchFunctionalConnector(BaseConnector):
    """Apply ``torch.nn.functional.<function_name>(feature, **func_args)``.

    E.g. ``dict(type='TorchFunctionalConnector', function_name='avg_pool2d',
    func_args=dict(kernel_size=4))`` pools a ``(N, C, 16, 16)`` feature to
    ``(N, C, 4, 4)``.

    Args:
        function_name (str): One of :data:`FUNCTION_NAMES`.
        func_args (dict, optional): Keyword arguments of the function.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 function_name: Optional[str] = None,
                 func_args: Optional[Dict] = None,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg)
        if function_name not in FUNCTION_NAMES:
            raise ValueError(
                f'TorchFunctionalConnector: function_name={function_name!r} '
                f'is not supported; use one of {", ".join(FUNCTION_NAMES)}')
        self.function_name = function_name
        self.func = getattr(F, function_name)
        self.func_args = dict(func_args or {})

    def forward_train(self, feature: torch.Tensor) -> torch.Tensor:
        """Apply the function.

        Args:
            feature (Tensor): The recorded feature.

        Returns:
            Tensor: ``func(feature, **func_args)``.
        """
        return self.func(feature, **self.func_args)


@MODELS.register_module()
class TorchNNConnector(BaseConnector):
    """Wrap ``torch.nn.<module_name>(**module_args)``.

    E.g. ``dict(type='TorchNNConnector', module_name='AvgPool2d',
    module_args=dict(kernel_size=4))``. The wrapped module is the attribute
    ``func`` (its parameters, e.g. of a ``Conv2d``, are trained).

    Args:
        module_name (str): One of :data:`MODULE_NAMES`.
        module_args (dict, optional): Constructor arguments of the module.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 module_name: Optional[str] = None,
                 module_args: Optional[Dict] = None,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg)
        if module_name not in MODULE_NAMES:
            raise ValueError(
                f'TorchNNConnector: module_name={module_name!r} is not '
                f'supported; use one of {", ".join(MODULE_NAMES)}')
        self.module_name = module_name
        self.func = getattr(nn, module_name)(**dict(module_args or {}))

    def forward_train(self, feature: torch.Tensor) -> torch.Tensor:
        """Apply the module.

        Args:
            feature (Tensor): The recorded feature.

        Returns:
            Tensor: ``module(feature)``.
        """
        return self.func(feature)
