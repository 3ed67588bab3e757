"""``QConfigHandler``: a 1.x ``global_qconfig`` read as a torch ``QConfig``.

A 1.x quantizer combines ``w_observer`` + ``w_fake_quant`` + ``w_qscheme``
(and the ``a_`` ones for activations) the way torch's
``FakeQuantize.with_args(observer=..., **qscheme_kwargs)`` does;
:func:`fake_quant_factory` and :func:`observer_factory` do that for one
triple, :class:`QConfigHandler` for a whole ``global_qconfig``.
"""
import copy
import inspect
from typing import Any, Dict, Optional, Union

from torch.ao.quantization import QConfig

from mmrazor.registry import MODELS
from .qscheme import QSchemeHandler

QCONFIG_KEYS = ('w_observer', 'a_observer', 'w_fake_quant', 'a_fake_quant',
                'w_qscheme', 'a_qscheme')


def _resolve_type(cfg: Union[Dict, type, Any], key: str):
    """Split ``cfg`` into the registered class and its extra arguments."""
    if inspect.isclass(cfg):
        return cfg, {}
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise TypeError(f'{key} must be a dict with a \'type\' key (or a '
                        f'class), got {cfg!r}')
    cfg = dict(copy.deepcopy(cfg))
    type_ = cfg.pop('type')
    cls = type_ if inspect.isclass(type_) else MODELS.get(type_)
    if cls is None:
        raise KeyError(f'{key}: type={type_!r} is not registered in '
                       'mmrazor\'s MODELS registry')
    return cls, cfg


def is_per_channel_observer(observer_cls: type) -> bool:
    """1.x rule: an observer is per-channel when ``PerChannel`` is in its
    class name."""
    return 'PerChannel' in observer_cls.__name__


def _qscheme_handler(qscheme_cfg: Optional[Dict], observer_cls: type,
                     key: str) -> QSchemeHandler:
    qscheme_cfg = dict(qscheme_cfg or {})
    if 'is_per_channel' in qscheme_cfg:
        wanted = is_per_channel_observer(observer_cls)
        if qscheme_cfg['is_per_channel'] != wanted:
            raise ValueError(
                f'{key}: is_per_channel={qscheme_cfg["is_per_channel"]!r} '
                f'contradicts the observer {observer_cls.__name__} (per '
                'channel exactly when its name contains "PerChannel")')
    qscheme_cfg['is_per_channel'] = is_per_channel_observer(observer_cls)
    return QSchemeHandler(**qscheme_cfg)


def _check_builds(factory, what: str) -> None:
    """Build ``factory`` once, so that bad arguments fail now, named."""
    try:
        factory()
    except TypeError as err:
        raise TypeError(f'{what} cannot be built: {err}') from err


def observer_factory(observer_cfg: Union[Dict, type],
                     qscheme_cfg: Optional[Dict] = None,
                     key: str = 'observer'):
    """Constructor of an observer for a 1.x ``(observer, qscheme)`` pair.

    Args:
        observer_cfg (dict | type): ``dict(type='mmrazor.MinMaxObserver',
            **extra_kwargs)`` or an observer class.
        qscheme_cfg (dict, optional): A 1.x qscheme dict, see
            :class:`QSchemeHandler`. ``is_per_channel`` follows the observer.
        key (str): Name of the config entry, for error messages.

    Returns:
        callable: ``observer_cls.with_args(**qscheme_kwargs, **extra)``;
        call it to get an observer.
    """
    observer_cls, extra = _resolve_type(observer_cfg, key)
    qscheme = _qscheme_handler(qscheme_cfg, observer_cls, key)
    factory = observer_cls.with_args(**qscheme.to_observer_params(), **extra)
    _check_builds(factory, f'{key} {observer_cls.__name__} with {qscheme}')
    return factory


def fake_quant_factory(fake_quant_cfg: Union[Dict, type],
                       observer_cfg: Union[Dict, type],
                       qscheme_cfg: Optional[Dict] = None,
                       key: str = 'fake_quant'):
    """Constructor of a fake-quant for a 1.x
    ``(fake_quant, observer, qscheme)`` triple.

    Args:
        fake_quant_cfg (dict | type): ``dict(type='mmrazor.FakeQuantize',
            **extra_kwargs)`` or a fake-quant class.
        observer_cfg (dict | type): See :func:`observer_factory`.
        qscheme_cfg (dict, optional): See :func:`observer_factory`.
        key (str): Name of the config entry, for error messages.

    Returns:
        callable: ``fake_quant_cls.with_args(observer=observer_with_extra,
        **qscheme_kwargs, **extra)``; call it to get a fake-quant.
    """
    fake_quant_cls, fq_extra = _resolve_type(fake_quant_cfg, key)
    observer_cls, obs_extra = _resolve_type(observer_cfg, key + ' observer')
    qscheme = _qscheme_handler(qscheme_cfg, observer_cls, key)
    observer = observer_cls.with_args(**obs_extra) if obs_extra \
        else observer_cls
    factory = fake_quant_cls.with_args(
        observer=observer, **qscheme.to_observer_params(), **fq_extra)
    _check_builds(
        factory, f'{key} {fake_quant_cls.__name__} with observer '
        f'{observer_cls.__name__} and {qscheme}')
    return factory


class QConfigHandler:
    """A 1.x ``global_qconfig``: observers, fake-quants and schemes of the
    weights (``w_``) and activations (``a_``).

    Args:
        qconfig (dict): With the keys ``w_observer``, ``a_observer``,
            ``w_fake_quant``, ``a_fake_quant``, ``w_qscheme`` and
            ``a_qscheme``. The fake-quant keys may be left out (or None) for
            observer-only (PTQ without fake-quantization) use.

    Attributes:
        w_qscheme, a_qscheme (QSchemeHandler): The schemes.
        w_observer, a_observer (callable): Observer constructors.
        w_fake_quant, a_fake_quant (callable | None): Fake-quant
            constructors (1.x spelling ``w_fakequant`` / ``a_fakequant``
            also works).
    """

    def __init__(self, qconfig: Dict) -> None:
        if isinstance(qconfig, QConfigHandler):
            qconfig = qconfig.qconfig
        if not isinstance(qconfig, dict):
            raise TypeError('global_qconfig must be a dict, got '
                            f'{type(qconfig).__name__}: {qconfig!r}')
        unknown = sorted(set(qconfig) - set(QCONFIG_KEYS))
        if unknown:
            raise KeyError(f'global_qconfig has unknown key(s) {unknown}; '
                           f'the keys are {list(QCONFIG_KEYS)}')
        for key in ('w_observer', 'a_observer'):
            if qconfig.get(key) is None:
                raise KeyError(f'global_qconfig needs {key!r}')
        self.qconfig = dict(qconfig)
        for prefix in ('w', 'a'):
            observer_cfg = qconfig[f'{prefix}_observer']
            qscheme_cfg = qconfig.get(f'{prefix}_qscheme')
            observer_cls, _ = _resolve_type(observer_cfg, f'{prefix}_observer')
            setattr(
                self, f'{prefix}_qscheme',
                _qscheme_handler(qscheme_cfg, observer_cls,
                                 f'{prefix}_qscheme'))
            setattr(
                self, f'{prefix}_observer',
                observer_factory(observer_cfg, qscheme_cfg,
                                 f'{prefix}_observer'))
            fake_quant_cfg = qconfig.get(f'{prefix}_fake_quant')
            setattr(
                self, f'{prefix}_fake_quant',
                None if fake_quant_cfg is None else fake_quant_factory(
                    fake_quant_cfg, observer_cfg, qscheme_cfg,
                    f'{prefix}_fake_quant'))

    @property
    def w_fakequant(self):
        """1.x spelling of :attr:`w_fake_quant`."""
        return self.w_fake_quant

    @property
    def a_fakequant(self):
        """1.x spelling of :attr:`a_fake_quant`."""
        return self.a_fake_quant

    def convert(self) -> QConfig:
        """The torch ``QConfig``: fake-quants where configured, observers
        otherwise.

        Returns:
            QConfig: ``QConfig(activation=..., weight=...)``.
        """
        activation = self.a_fake_quant or self.a_observer
        weight = self.w_fake_quant or self.w_observer
        return QConfig(activation=activation, weight=weight)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(w_qscheme={self.w_qscheme}, '
                f'a_qscheme={self.a_qscheme})')
