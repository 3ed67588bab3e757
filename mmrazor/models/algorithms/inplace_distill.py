"""In-place distillation of weight-sharing supernets (AutoSlim, BigNAS):
the largest subnet's logits teach the smaller subnets of the same step.

Both algorithms take the 1.x ``ConfigurableDistiller`` config that records
one layer's outputs as student and as teacher; here it is read into the
layer and the loss it stands for.
"""
from typing import Any, Sequence, Tuple

from torch import nn


def config_kind(cfg: Any) -> str:
    """The unscoped ``type`` of a config dict ('' when there is none)."""
    return str(cfg.get('type', '')).split('.')[-1] if isinstance(
        cfg, dict) else ''


def refuse_extra_keys(who: str, what: str, cfg: dict,
                      known: Sequence[str]) -> None:
    """Raise naming the keys of ``cfg`` that are not in ``known``.

    Args:
        who (str): The algorithm, for the message.
        what (str): The config's place, for the message.
        cfg (dict): The config.
        known (Sequence[str]): Supported keys (``type`` and ``_scope_``
            always are).

    Raises:
        ValueError: Naming the unsupported keys.
    """
    extra = sorted(set(cfg) - set(known) - {'type', '_scope_'})
    if extra:
        raise ValueError(f'{who}: {what} keys {extra} are not supported '
                         f'(supported: {sorted(known)})')


def _recorded_source(recorders: Any, side: str, who: str) -> Tuple[str, str]:
    """``(name, source)`` of the one ``ModuleOutputs`` recorder of a side
    of a ``ConfigurableDistiller`` config."""
    if not isinstance(recorders, dict) or len(recorders) != 1:
        raise ValueError(f'{who}: the distiller needs one {side} '
                         f'recorder, got {recorders!r}')
    name, recorder = next(iter(recorders.items()))
    if config_kind(recorder) != 'ModuleOutputs' or 'source' not in recorder:
        raise ValueError(f'{who}: the {side} recorder {name!r} must be a '
                         f'ModuleOutputs with a source, got {recorder!r}')
    return name, recorder['source']


def logits_loss_of_configurable_distiller(distiller: dict,
                                          hint: str,
                                          who: str = 'AutoSlim'
                                          ) -> Tuple[str, dict]:
    """The module and the loss of a 1.x in-place distillation config.

    Args:
        distiller (dict): A ``ConfigurableDistiller`` config recording one
            module's outputs as student and as teacher, with one loss whose
            ``loss_forward_mappings`` read the student's and the teacher's.
        hint (str): What to do instead, for error messages.
        who (str): The algorithm, for error messages.

    Returns:
        tuple[str, dict]: The module path (e.g. ``'head.fc'``) and the
        loss config.

    Raises:
        ValueError: The distiller is anything else.
    """
    student_name, student = _recorded_source(
        distiller.get('student_recorders'), 'student', who)
    teacher_name, teacher = _recorded_source(
        distiller.get('teacher_recorders'), 'teacher', who)
    if student != teacher:
        raise ValueError(f'{who}: the distiller must record one module as '
                         f'student and teacher, got {student!r} and '
                         f'{teacher!r}; {hint}')
    losses = distiller.get('distill_losses') or {}
    if len(losses) != 1:
        raise ValueError(f'{who}: the distiller must have one distill '
                         f'loss, got {list(losses)}; {hint}')
    loss_name, loss = next(iter(losses.items()))
    mapping = (distiller.get('loss_forward_mappings') or {}).get(loss_name)
    sides = sorted((m.get('recorder'), bool(m.get('from_student')))
                   for m in (mapping or {}).values())
    if sides != sorted([(student_name, True), (teacher_name, False)]):
        raise ValueError(f'{who}: loss_forward_mappings of {loss_name!r} '
                         'must read the student recorder '
                         f'{student_name!r} and the teacher recorder '
                         f'{teacher_name!r}, got {mapping!r}; {hint}')
    refuse_extra_keys(who, 'distiller', distiller,
                      ('student_recorders', 'teacher_recorders',
                       'distill_losses', 'loss_forward_mappings'))
    return student, dict(loss)


def last_linear_name(model: nn.Module) -> str:
    """The module path of the last ``nn.Linear`` of ``model`` (its logits
    layer, for a classifier); '' when it has none."""
    linears = [name for name, m in model.named_modules()
               if isinstance(m, nn.Linear)]
    return linears[-1] if linears else ''


def check_logits_layer(model: nn.Module, path: str, hint: str,
                       who: str) -> None:
    """Refuse a distiller that reads another layer than the logits.

    Args:
        model (nn.Module): The classifier.
        path (str): The module the distiller reads, e.g. ``'head.fc'``.
        hint (str): What to do instead, for the message.
        who (str): The algorithm, for the message.

    Raises:
        ValueError: ``path`` is not the classifier's last linear layer.
    """
    last = last_linear_name(model)
    if not last or last != path:
        raise ValueError(f'{who}: the distiller reads {path!r}, not the '
                         'last linear layer of the classifier '
                         f'({last or None!r}); {hint}')
