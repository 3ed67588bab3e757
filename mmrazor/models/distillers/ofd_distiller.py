"""``OFDDistiller``: the distiller of "A Comprehensive Overhaul of Feature
Distillation" (MMRazor 1.x), whose teacher connectors are margin ReLUs."""
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmrazor.registry import MODELS
from .configurable_distiller import ConfigurableDistiller
from .ofd_connector import ofd_margin


def module_at(model: nn.Module, path: str) -> nn.Module:
    """The sub-module of ``model`` at ``path``.

    Args:
        model (nn.Module): The model.
        path (str): A module path, e.g. ``'backbone.layer2.0.bn1'``.

    Returns:
        nn.Module: The module.
    """
    modules = dict(model.named_modules())
    if path not in modules:
        raise KeyError(f'OFDDistiller: the teacher has no module {path!r}')
    return modules[path]


@MODELS.register_module()
class OFDDistiller(ConfigurableDistiller):
    """The distiller of OFD ("A Comprehensive Overhaul of Feature
    Distillation", Heo et al., ICCV 2019).

    A :class:`ConfigurableDistiller` whose teacher-side connectors
    (``OFDTeacherConnector``, the margin ReLU) take their per-channel
    margins from the statistics of the teacher's batch norm whose output
    the argument's recorder records (:func:`~.ofd_connector.ofd_margin`:
    the expectation of the negative responses, :math:`N(m, s^2)` with
    :math:`m, s` the BN bias and absolute weight). The algorithm calls
    :meth:`init_ofd_connectors` with the teacher once it has its weights.

    Args are those of :class:`ConfigurableDistiller`.
    """

    def init_ofd_connectors(self, teacher: nn.Module) -> None:
        """Set the margin of every teacher connector that has one
        (``init_margin``) from the teacher's batch norm it follows.

        Args:
            teacher (nn.Module): The teacher.

        Raises:
            TypeError: Such a connector follows a teacher recorder whose
                module is no batch norm.
        """
        for loss_name, args in self.loss_forward_mappings.items():
            for arg, spec in args.items():
                connector = spec['connector']
                if connector is None or spec['from_student'] or not hasattr(
                        self.connectors[connector], 'init_margin'):
                    continue
                source = self.teacher_recorders.get_recorder(
                    spec['recorder']).source
                bn = module_at(teacher, source)
                if not isinstance(bn, _BatchNorm) or bn.weight is None:
                    raise TypeError(
                        f'OFDDistiller: connector {connector!r} of '
                        f'{loss_name}.{arg} sets its margin from the teacher '
                        f'module its recorder records ({source!r}), which '
                        'must be a batch norm with affine parameters, got '
                        f'{bn!r}')
                self.connectors[connector].init_margin(
                    ofd_margin(bn.weight, bn.bias))
