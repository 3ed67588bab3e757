"""``BYOTDistiller``: the distiller of "Be Your Own Teacher" (MMRazor 1.x),
whose connectors are the shallow classifiers."""
from typing import Any, Dict, Optional, Tuple

import torch

from mmrazor.registry import MODELS
from .configurable_distiller import ConfigurableDistiller


@MODELS.register_module()
class BYOTDistiller(ConfigurableDistiller):
    """The distiller of BYOT ("Be Your Own Teacher: Improve the Performance
    of Convolutional Neural Networks via Self Distillation", Zhang et al.,
    ICCV 2019), used by ``SelfDistill``.

    The model is cut into sections; a shallow classifier (a connector, e.g.
    ``BYOTConnector``) after each shallow section maps its recorded feature
    onto ``(feature, logits)``. Each shallow classifier ``i`` learns from
    the labels and from the deepest classifier (the teacher side: its
    logits and the deepest feature) with

    .. math::
        L_i = (1 - \\alpha) CE(q_i, y) + \\alpha KL(q_i, q_C)
              + \\lambda \\| F_i - F_C \\|_2

    (the weights are the losses' ``loss_weight``). On top of
    :class:`ConfigurableDistiller`, an argument mapping may name
    ``connector_idx``, which output of the connector it takes (0: the
    feature, 1: the logits). Each connector runs once per recorded input
    and step, however many arguments take its outputs.

    Args are those of :class:`ConfigurableDistiller`.
    """

    _connector_cache: Optional[Dict[Tuple, Any]] = None

    def _check_arg_mapping(self, where: str, spec: Any) -> Dict[str, Any]:
        """Check one argument mapping; ``connector_idx`` is allowed too.

        Args:
            where (str): The mapping's place, for messages.
            spec (dict): The mapping.

        Returns:
            dict: The checked mapping, with ``connector_idx``.
        """
        if not isinstance(spec, dict):
            return super()._check_arg_mapping(where, spec)
        spec = dict(spec)
        connector_idx = spec.pop('connector_idx', None)
        checked = super()._check_arg_mapping(where, spec)
        if connector_idx is not None:
            if isinstance(connector_idx, bool) or not isinstance(
                    connector_idx, int):
                raise TypeError(f'{where}: connector_idx must be an int, '
                                f'got {connector_idx!r}')
            if checked['connector'] is None:
                raise KeyError(f'{where}: connector_idx={connector_idx} '
                               'selects an output of a connector, but no '
                               '`connector` is named')
        checked['connector_idx'] = connector_idx
        return checked

    def get_record(self,
                   recorder: str,
                   from_student: bool,
                   record_idx: int = 0,
                   data_idx: Optional[int] = None,
                   connector: Optional[str] = None,
                   connector_idx: Optional[int] = None) -> Any:
        """One recorded value, through its connector if one is named, and
        then the ``connector_idx``-th output of the connector.

        Args:
            recorder (str): The recorder's name.
            from_student (bool): A student recorder (else a teacher one).
            record_idx (int): Which call. Defaults to 0.
            data_idx (int, optional): Which value of that call.
            connector (str, optional): The connector to apply.
            connector_idx (int, optional): Which of its outputs.

        Returns:
            Any: The value.
        """
        if connector is None:
            return super().get_record(recorder, from_student, record_idx,
                                      data_idx)
        key = (recorder, from_student, record_idx, data_idx, connector)
        cache = self._connector_cache
        if cache is not None and key in cache:
            outputs = cache[key]
        else:
            outputs = super().get_record(recorder, from_student, record_idx,
                                         data_idx, connector)
            if cache is not None:
                cache[key] = outputs
        if connector_idx is None:
            return outputs
        if not isinstance(outputs, (tuple, list)):
            raise TypeError(
                f'BYOTDistiller: connector_idx={connector_idx} given, but '
                f'connector {connector!r} returned a '
                f'{type(outputs).__name__}, not a tuple of outputs')
        if not -len(outputs) <= connector_idx < len(outputs):
            raise IndexError(
                f'BYOTDistiller: connector_idx={connector_idx} is out of '
                f'range; connector {connector!r} returned {len(outputs)} '
                'output(s)')
        return outputs[connector_idx]

    def compute_distill_losses(self) -> Dict[str, torch.Tensor]:
        """Every distillation loss; each connector runs once per input.

        Returns:
            dict[str, Tensor]: Loss name -> value.
        """
        self._connector_cache = {}
        try:
            return super().compute_distill_losses()
        finally:
            self._connector_cache = None
