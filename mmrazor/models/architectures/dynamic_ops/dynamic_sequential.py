"""A Sequential whose depth follows a mutable."""
from collections import OrderedDict

import torch
from torch import nn

from mmrazor.models.mutables import BaseMutable
from mmrazor.registry import MODELS
from .base import DynamicMixin


@MODELS.register_module()
class DynamicSequential(nn.Sequential, DynamicMixin):
    """``nn.Sequential`` running only its first ``depth`` modules.

    Mutable attribute: ``'depth'`` (a value mutable of ints in
    ``[1, len(self)]``). For resource estimators: ``active_depth`` (int);
    only the first ``active_depth`` children run.

    As in MMRazor 1.x, :meth:`convert_from` turns a plain ``nn.Sequential``
    into one, and :meth:`to_static_op` needs the depth fixed first.
    """

    mutable_attr_names = ('depth', )

    def __init__(self, *args: nn.Module) -> None:
        super().__init__(*args)
        self._init_mutable_attrs()

    @classmethod
    def convert_from(cls, module: nn.Sequential) -> 'DynamicSequential':
        """A dynamic sequential over the same modules as ``module``.

        The children are shared, not copied, and keep their names; no
        mutable is registered yet (all of them run).

        Args:
            module (nn.Sequential): The static container.

        Returns:
            DynamicSequential: The dynamic container.
        """
        if not isinstance(module, nn.Sequential):
            raise TypeError('DynamicSequential.convert_from needs an '
                            f'nn.Sequential, got {type(module).__name__}')
        return cls(OrderedDict(module.named_children()))

    def _check_mutable_attr(self, name: str, mutable: BaseMutable) -> None:
        for depth in mutable.choices:
            if not isinstance(depth, int) or not 1 <= depth <= len(self):
                raise ValueError(f'depth choice {depth!r} is not an int in '
                                 f'[1, {len(self)}]')

    def _blocks(self):
        # Children other than the mutable container, in order.
        return [m for name, m in self._modules.items()
                if name != 'mutable_attrs']

    def __len__(self) -> int:
        return len(self._blocks())

    def __iter__(self):
        return iter(self._blocks())

    def __getitem__(self, index):
        blocks = self._blocks()
        if isinstance(index, slice):
            return nn.Sequential(*blocks[index])
        return blocks[index]

    @property
    def active_depth(self) -> int:
        """How many leading modules run."""
        mutable = self.get_mutable_attr('depth')
        return len(self) if mutable is None else int(mutable.current_choice)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self._blocks()[:self.active_depth]:
            x = module(x)
        return x

    def to_static_op(self) -> nn.Sequential:
        """A plain ``nn.Sequential`` of the first ``active_depth`` modules
        (the modules themselves, not copies; an exporter converts them
        too), under their names.

        Returns:
            nn.Sequential: The static container.

        Raises:
            RuntimeError: The depth mutable is not fixed (fix it, e.g. with
                ``mutable.fix_chosen(...)`` or ``load_fix_subnet``, first).
        """
        mutable = self.get_mutable_attr('depth')
        if mutable is not None and not mutable.is_fixed:
            raise RuntimeError(
                'DynamicSequential.to_static_op needs its depth mutable '
                f'fixed first; it is not (current choice '
                f'{mutable.current_choice!r})')
        names = [name for name in self._modules if name != 'mutable_attrs']
        kept = names[:self.active_depth]
        return nn.Sequential(
            OrderedDict((name, self._modules[name]) for name in kept))
