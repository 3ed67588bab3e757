"""Data-free distillation (MMRazor 1.x's ``DataFreeDistillation`` and
``DAFLDataFreeDistillation``): the student learns from a frozen teacher
on images that a generator makes from noise."""
import contextlib
from typing import Any, Dict, Iterator, Optional, Union

import torch
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import nn

from mmrazor.models.distillers import ConfigurableDistiller
from mmrazor.registry import MODELS
from ..base import BaseAlgorithm
from .general_distill import add_prefix
from .single_teacher_distill import build_model, load_teacher_checkpoint

#: Keys of one entry of ``teachers``.
TEACHER_KEYS = ('build_cfg', 'ckpt_path')

#: Keys of the ``OptimWrapperDict`` a data-free training step needs.
OPTIM_KEYS = ('architecture', 'generator')


def build_distiller(cfg: Union[dict, ConfigurableDistiller],
                    name: str) -> ConfigurableDistiller:
    """Build a ``ConfigurableDistiller``.

    Args:
        cfg (dict | ConfigurableDistiller): Its config, or the distiller.
        name (str): ``'distiller'`` or ``'generator_distiller'``.

    Returns:
        ConfigurableDistiller: The distiller.
    """
    distiller = MODELS.build(cfg) if isinstance(cfg, dict) else cfg
    if not isinstance(distiller, ConfigurableDistiller):
        raise TypeError(f'DataFreeDistillation: `{name}` must be a '
                        'ConfigurableDistiller (or its config), got '
                        f'{type(distiller).__name__}')
    return distiller


def build_teachers(teachers: Dict[str, Any]) -> nn.ModuleDict:
    """Build the teachers: name -> ``dict(build_cfg=model config,
    ckpt_path=local checkpoint or None)`` (or a module).

    Args:
        teachers (dict): As in the 1.x configs.

    Returns:
        nn.ModuleDict: Name -> teacher; recorders name their modules
        ``'<name>.<path>'`` (``'res34.head.fc'``).
    """
    if not isinstance(teachers, dict) or not teachers:
        raise TypeError('DataFreeDistillation: `teachers` must be a non-empty '
                        'dict of name -> dict(build_cfg=..., ckpt_path=...), '
                        f'got {teachers!r}')
    built = nn.ModuleDict()
    for name, entry in teachers.items():
        if not isinstance(name, str) or not name or '.' in name:
            raise ValueError(f'DataFreeDistillation: teacher name {name!r} '
                             'must be a non-empty string without dots')
        if isinstance(entry, nn.Module):
            built[name] = entry
            continue
        if not isinstance(entry, dict) or 'build_cfg' not in entry:
            raise TypeError(f'DataFreeDistillation: teachers[{name!r}] must '
                            'be dict(build_cfg=..., ckpt_path=...), got '
                            f'{entry!r}')
        unknown = sorted(set(entry) - set(TEACHER_KEYS))
        if unknown:
            raise KeyError(f'DataFreeDistillation: teachers[{name!r}] has '
                           f'unknown keys {unknown}; allowed keys are '
                           f'{list(TEACHER_KEYS)}')
        teacher = build_model(entry['build_cfg'], f'teachers.{name}')
        if entry.get('ckpt_path') is not None:
            load_teacher_checkpoint(teacher, entry['ckpt_path'])
        built[name] = teacher
    return built


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a model wrapper (DDP), else ``module``."""
    return module.module if is_model_wrapper(module) else module


@contextlib.contextmanager
def frozen_parameters(module: nn.Module) -> Iterator[None]:
    """Within the block, the trainable parameters of ``module`` require no
    gradient: a forward pass through it builds no graph to them, so a
    backward pass leaves their ``.grad`` untouched.

    Args:
        module (nn.Module): The module.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    for param in params:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param in params:
            param.requires_grad_(True)


def batch_size_of(data: Any) -> int:
    """The number of samples of a data batch.

    Args:
        data (dict | list | tuple): What the dataloader gives.

    Returns:
        int: Its batch size.
    """
    inputs = data.get('inputs') if isinstance(data, dict) else data
    if isinstance(inputs, torch.Tensor):
        size = inputs.shape[0] if inputs.dim() else 0
    elif isinstance(inputs, (list, tuple)):
        size = len(inputs)
    else:
        raise TypeError('DataFreeDistillation: the data batch only gives the '
                        'number of images to generate; expected a dict with '
                        f'`inputs` (a tensor or a list), got {type(data)}')
    if size == 0:
        raise ValueError('DataFreeDistillation: the data batch is empty; '
                         'the number of generated images is its batch size')
    return size


@MODELS.register_module()
class DataFreeDistillation(BaseAlgorithm):
    """Data-free distillation with an adversarial generator (DFAD, ZSKT).

    The data batches are used for their size only: each training step
    generates images from Gaussian noise with ``generator`` and

    * the student phase (``student_iter`` times): new images, without
      gradients to the generator; the teachers (frozen, in eval mode, no
      gradients) and the student run on them inside the ``distiller``'s
      recorders; its losses update the student (and its connectors) with
      the ``architecture`` optimizer;
    * the generator phase: new images, with gradients; the teachers
      (frozen parameters, gradients flowing through them to the images)
      and, if the ``generator_distiller`` records it, the student (its
      parameters frozen for this pass) run inside the
      ``generator_distiller``'s recorders; its losses (e.g. a negative
      L1 / KL weight, to make images on which student and teacher
      disagree) update the generator with the ``generator`` optimizer.

    The phases run in that order if ``student_train_first``, else the
    generator phase first. Models run in ``'tensor'`` mode (generated
    images have no labels). The optimizers come from
    ``optim_wrapper=dict(constructor='mmrazor.SeparateOptimWrapperConstructor',
    architecture=dict(...), generator=dict(...))``. Validation and
    prediction use the student alone.

    Args:
        architecture (dict | nn.Module): The student.
        teachers (dict): Name -> ``dict(build_cfg=model config,
            ckpt_path=local checkpoint)`` (or a module); recorders name
            their modules ``'<name>.<path>'``.
        generator (dict | nn.Module): The generator, e.g.
            ``dict(type='DAFLGenerator', img_size=32, latent_dim=256,
            hidden_channels=128)``.
        distiller (dict | ConfigurableDistiller): The losses of the
            student phase.
        generator_distiller (dict | ConfigurableDistiller): The losses of
            the generator phase.
        student_iter (int): Student updates per training step. Defaults
            to 1.
        student_train_first (bool): Run the student phase before the
            generator phase. Defaults to False.
        data_preprocessor (dict | nn.Module, optional): Prepares the
            validation data. Defaults to the student's.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 architecture: Union[dict, nn.Module],
                 teachers: Dict[str, Any],
                 generator: Union[dict, nn.Module],
                 distiller: Union[dict, ConfigurableDistiller],
                 generator_distiller: Union[dict, ConfigurableDistiller],
                 student_iter: int = 1,
                 student_train_first: bool = False,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            build_model(architecture, 'architecture'), data_preprocessor,
            init_cfg)
        if isinstance(student_iter, bool) or not isinstance(
                student_iter, int) or student_iter < 1:
            raise ValueError(f'{type(self).__name__}: student_iter must be '
                             f'an integer >= 1, got {student_iter!r}')
        self.student_iter = student_iter
        self.student_train_first = bool(student_train_first)
        self.teachers = build_teachers(teachers)
        self.teachers.requires_grad_(False)
        self.generator = MODELS.build(generator) if isinstance(
            generator, dict) else generator
        if not callable(getattr(self.generator, 'sample_batch', None)):
            raise TypeError(f'{type(self).__name__}: `generator` must be a '
                            'generator (e.g. DAFLGenerator) with '
                            'sample_batch(batch_size), got '
                            f'{type(self.generator).__name__}')
        self.distiller = build_distiller(distiller, 'distiller')
        self.generator_distiller = build_distiller(generator_distiller,
                                                   'generator_distiller')
        for each in (self.distiller, self.generator_distiller):
            each.prepare_from_student(self.architecture)
            each.prepare_from_teacher(self.teachers)
        self.train(self.training)

    @property
    def student(self) -> nn.Module:
        """The student (the architecture)."""
        return self.architecture

    def train(self, mode: bool = True) -> 'DataFreeDistillation':
        """Set train/eval mode; the teachers stay in eval mode.

        Args:
            mode (bool): Train mode if True.

        Returns:
            DataFreeDistillation: self.
        """
        super().train(mode)
        self.teachers.eval()
        return self

    # --------------------------------------------------------------- passes
    def generate(self, batch_size: int) -> torch.Tensor:
        """Generate a batch of images from new noise.

        Args:
            batch_size (int): How many images.

        Returns:
            Tensor: The images, ``(batch_size, 3, H, W)``.
        """
        latent = unwrap(self.generator).sample_batch(batch_size)
        return self.generator(latent, batch_size)

    def run_teachers(self, images: torch.Tensor) -> None:
        """Run every teacher on ``images`` (its recorders record).

        Args:
            images (Tensor): Generated images.
        """
        for teacher in self.teachers.values():
            teacher(images, mode='tensor')

    def student_losses(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The ``distiller``'s losses on ``images``: the teachers run
        without gradients, the student with.

        Args:
            images (Tensor): Generated images (no graph to the generator).

        Returns:
            dict[str, Tensor]: Loss name -> value.
        """
        distiller = self.distiller
        try:
            with distiller.teacher_recorders, torch.no_grad():
                self.run_teachers(images)
            with distiller.student_recorders:
                self.architecture(images, mode='tensor')
            return distiller.compute_distill_losses()
        finally:
            distiller.reset_data()

    def generator_losses(self,
                         images: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The ``generator_distiller``'s losses on ``images``: gradients
        flow through the teachers and the student (whose parameters are
        frozen meanwhile) back to the generator. The student runs only if
        the ``generator_distiller`` records it.

        Args:
            images (Tensor): Generated images, with their graph.

        Returns:
            dict[str, Tensor]: Loss name -> value.
        """
        distiller = self.generator_distiller
        try:
            with distiller.teacher_recorders:
                self.run_teachers(images)
            if len(distiller.student_recorders):
                with distiller.student_recorders, \
                        frozen_parameters(self.architecture):
                    self.architecture(images, mode='tensor')
            return distiller.compute_distill_losses()
        finally:
            distiller.reset_data()

    # ---------------------------------------------------------------- steps
    def train_student(self, batch_size: int,
                      wrapper: OptimWrapper) -> Dict[str, torch.Tensor]:
        """The student phase: ``student_iter`` updates of the student, each
        on new images.

        Args:
            batch_size (int): Images per update.
            wrapper (OptimWrapper): The student's optimizer.

        Returns:
            dict[str, Tensor]: Log variables of the last update, prefixed
            ``distill.``.
        """
        log_vars: Dict[str, torch.Tensor] = {}
        for _ in range(self.student_iter):
            with torch.no_grad():
                images = self.generate(batch_size)
            log_vars = self.student_update(images, wrapper)
        return log_vars

    def student_update(self, images: torch.Tensor,
                       wrapper: OptimWrapper) -> Dict[str, torch.Tensor]:
        """One update of the student on ``images``.

        Args:
            images (Tensor): Generated images, without graph.
            wrapper (OptimWrapper): The student's optimizer.

        Returns:
            dict[str, Tensor]: Log variables, prefixed ``distill.``.
        """
        with wrapper.optim_context(self.architecture):
            losses = self.student_losses(images)
        loss, log_vars = self.parse_losses(losses)
        wrapper.update_params(loss)
        return add_prefix(log_vars, 'distill')

    def train_generator(self, images: torch.Tensor,
                        wrapper: OptimWrapper) -> Dict[str, torch.Tensor]:
        """One update of the generator on the ``images`` it just made.

        Args:
            images (Tensor): Generated images, with their graph.
            wrapper (OptimWrapper): The generator's optimizer.

        Returns:
            dict[str, Tensor]: Log variables, prefixed ``generator.``.
        """
        with wrapper.optim_context(self.generator):
            losses = self.generator_losses(images)
        loss, log_vars = self.parse_losses(losses)
        wrapper.update_params(loss)
        return add_prefix(log_vars, 'generator')

    def split_wrappers(self, optim_wrapper: Any) -> Dict[str, OptimWrapper]:
        """The student's and the generator's optimizers.

        Args:
            optim_wrapper (OptimWrapperDict): From the runner.

        Returns:
            dict: ``architecture`` and ``generator`` -> optim wrapper.
        """
        keys = list(optim_wrapper.optim_wrappers) if isinstance(
            optim_wrapper, OptimWrapperDict) else None
        if keys is None or any(k not in keys for k in OPTIM_KEYS):
            got = keys if keys is not None else type(optim_wrapper).__name__
            raise KeyError(
                f'{type(self).__name__} needs two optimizers, an '
                f'OptimWrapperDict with keys {list(OPTIM_KEYS)}, e.g. '
                "optim_wrapper=dict(constructor='mmrazor."
                "SeparateOptimWrapperConstructor', architecture=dict(...), "
                f'generator=dict(...)); got {got}')
        return {k: optim_wrapper[k] for k in OPTIM_KEYS}

    def train_step(self, data: Any,
                   optim_wrapper: OptimWrapperDict) -> Dict[str, torch.Tensor]:
        """One training step: the student and the generator phases (see the
        class doc).

        Args:
            data (dict): A data batch; only its size is used.
            optim_wrapper (OptimWrapperDict): ``architecture`` and
                ``generator`` optimizers.

        Returns:
            dict[str, Tensor]: Log variables (``distill.*``,
            ``generator.*``).
        """
        wrappers = self.split_wrappers(optim_wrapper)
        batch_size = batch_size_of(data)
        log_vars: Dict[str, torch.Tensor] = {}
        if self.student_train_first:
            log_vars.update(
                self.train_student(batch_size, wrappers['architecture']))
        log_vars.update(
            self.train_generator(
                self.generate(batch_size), wrappers['generator']))
        if not self.student_train_first:
            log_vars.update(
                self.train_student(batch_size, wrappers['architecture']))
        return log_vars


@MODELS.register_module()
class DAFLDataFreeDistillation(DataFreeDistillation):
    """DAFL ("Data-Free Learning of Student Networks", Chen et al., ICCV
    2019): the teachers act as a fixed discriminator.

    Each training step first updates the generator with losses on the
    teachers' outputs only (the ``generator_distiller``: one-hot,
    information-entropy and activation losses, ``OnehotLikeLoss``,
    ``InformationEntropyLoss``, ``ActivationLoss``), then updates the
    student ``student_iter`` times on the images of that generator step
    (detached), distilled from the teachers by the ``distiller`` (KD), as
    in the paper's algorithm. Arguments are those of
    :class:`DataFreeDistillation`; ``student_train_first`` must be False.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get('student_train_first', False):
            raise ValueError('DAFLDataFreeDistillation: the generator step '
                             'comes first (the student learns on its images); '
                             'student_train_first=True is not supported')
        super().__init__(*args, **kwargs)

    def train_step(self, data: Any,
                   optim_wrapper: OptimWrapperDict) -> Dict[str, torch.Tensor]:
        """The generator update, then the student updates on its images.

        Args:
            data (dict): A data batch; only its size is used.
            optim_wrapper (OptimWrapperDict): ``architecture`` and
                ``generator`` optimizers.

        Returns:
            dict[str, Tensor]: Log variables (``generator.*``,
            ``distill.*``).
        """
        wrappers = self.split_wrappers(optim_wrapper)
        images = self.generate(batch_size_of(data))
        log_vars = self.train_generator(images, wrappers['generator'])
        for _ in range(self.student_iter):
            log_vars.update(
                self.student_update(images.detach(), wrappers['architecture']))
        return log_vars
