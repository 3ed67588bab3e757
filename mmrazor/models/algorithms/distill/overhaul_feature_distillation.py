"""``OverhaulFeatureDistillation`` (OFD, MMRazor 1.x)."""
from typing import Any

from mmrazor.models.distillers.ofd_distiller import OFDDistiller
from mmrazor.registry import MODELS
from .single_teacher_distill import SingleTeacherDistill


@MODELS.register_module()
class OverhaulFeatureDistillation(SingleTeacherDistill):
    """OFD ("A Comprehensive Overhaul of Feature Distillation", Heo et al.,
    ICCV 2019): :class:`SingleTeacherDistill` with an
    :class:`~mmrazor.models.distillers.OFDDistiller`, whose teacher
    connectors (margin ReLUs) take their margins from the teacher's batch
    norms.

    The margins are set when the algorithm is built (after ``teacher_ckpt``
    is loaded) and set again by :meth:`init_weights`, after which the
    teacher has its final weights (e.g. from a ``Pretrained``
    ``init_cfg``). Takes the arguments of :class:`SingleTeacherDistill`;
    the ``distiller`` must be an ``OFDDistiller``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.distiller, OFDDistiller):
            raise TypeError('OverhaulFeatureDistillation: `distiller` must be '
                            'an OFDDistiller, got '
                            f'{type(self.distiller).__name__}')
        self.distiller.init_ofd_connectors(self.teacher)

    def init_weights(self) -> None:
        """Initialise the weights, then the margins from the teacher."""
        super().init_weights()
        self.distiller.init_ofd_connectors(self.teacher)
