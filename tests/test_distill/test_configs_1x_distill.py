"""The 1.x toolbox's classification distillation configs, trained as they
are.

Each case runs ``tools/train.py`` (its ``main()``, in this process) on an
original config of ``configs/distill/mmcls`` of the 1.x toolbox with only
data paths, loader sizes, schedule lengths and checkpoint paths changed on
the command line: URL checkpoints (teachers, pretrained algorithms) are
replaced by local files saved from freshly built models, as nothing is
downloaded. ImageNet configs read Fashion-MNIST exported as an ImageNet
folder; CIFAR configs read ``mmrazor.FashionMNISTAsCIFAR``.

The KD (ResNet-34 teacher), WSLD, FitNets and DKD configs are trained in
``test_configurable_distiller.py::test_train_1x_distill_config``.
"""
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

import pytest
import torch

from mmrazor.apis.config_compat import load_config
from tool_runs import train_in_process

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DISTILL_1X = osp.join(
    osp.dirname(REPO), 'shared', 'reference', 'mmrazor-1.x', 'configs',
    'distill', 'mmcls')
#: The Fashion-MNIST subset shipped in the repository (CIFAR configs).
FASHION_ROOT = osp.join(REPO, 'data', 'fashion_mnist_subset')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')

needs_reference = pytest.mark.skipif(
    not osp.isdir(DISTILL_1X), reason='1.x reference configs not available')


def wideresnet_missing() -> bool:
    """Whether the ``WideResNet`` backbone (OFD's models) is registered."""
    from mmrazor.registry import MODELS
    import mmrazor.models  # noqa: F401  (registers the modules)
    return 'WideResNet' not in MODELS.module_dict


# --------------------------------------------------------------- options
def loader_options(keys: Sequence[str], images: int,
                   dataset_key: str = 'dataset') -> List[str]:
    """Batches of 2 images, ``images`` images per loader, no workers."""
    options = []
    for key in keys:
        options += [
            f'{key}.batch_size=2', f'{key}.num_workers=0',
            f'{key}.persistent_workers=False',
            f'{key}.{dataset_key}.indices={images}'
        ]
    return options


def imagenet_options(root: str) -> List[str]:
    """Fashion-MNIST as an ImageNet folder, 2 images per loader."""
    options = [f'{key}.dataset.data_root={root}' for key in LOADERS]
    return options + loader_options(LOADERS, images=2)


def cifar_options(dataset_key: str = 'dataset') -> List[str]:
    """Fashion-MNIST as CIFAR (32x32x3), 4 images per loader.

    Args:
        dataset_key (str): Where the CIFAR dataset is in each loader:
            ``'dataset'``, or ``'dataset.dataset'`` under a wrapper
            (CRD's ``CRDDataset``).
    """
    options = []
    for key in LOADERS:
        options += [
            f'{key}.{dataset_key}.type=mmrazor.FashionMNISTAsCIFAR',
            f'{key}.{dataset_key}.data_root={FASHION_ROOT}'
        ]
    return options + loader_options(LOADERS, images=4, dataset_key=dataset_key)


def epoch_options() -> List[str]:
    return ['train_cfg.max_epochs=1']


def iteration_options(iters: int = 2) -> List[str]:
    """A few iterations, validated and checkpointed at the last one."""
    return [
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
        f'default_hooks.checkpoint.interval={iters}',
        'default_hooks.logger.interval=1'
    ]


# ----------------------------------------------------------- checkpoints
def save_state(model: torch.nn.Module, path: str) -> str:
    torch.save(dict(state_dict=model.state_dict()), path)
    return path


def as_options(overrides: Dict[str, Any]) -> List[str]:
    """A dict of overrides as ``--cfg-options`` strings."""
    return [f'{key}={value}' for key, value in overrides.items()]


def local_checkpoints(config: str, work: str,
                      model_overrides: Dict[str, Any]) -> List[str]:
    """Save a freshly built model for every checkpoint the config names
    and return the options that point the config at those files.

    Covers ``model.teacher_ckpt`` (single teacher), ``model.teachers.<name>.
    ckpt_path`` (data-free distillation), a ``Pretrained`` ``init_cfg`` of
    the teacher's head (DeiT) and one of the whole algorithm (built with
    the teacher options already set).

    Args:
        config (str): The config file.
        work (str): Where to write the checkpoints.
        model_overrides (dict): ``model.*`` overrides of the case, applied
            before the models are built.

    Returns:
        list[str]: ``--cfg-options`` strings.
    """
    from mmrazor.registry import MODELS
    model_cfg = load_config(config, dict(model_overrides)).model
    overrides: Dict[str, Any] = {}
    head_init = (model_cfg.get('teacher') or {}).get('head', {}).get(
        'init_cfg') or {}
    if model_cfg.get('teacher_ckpt') or head_init.get('type') == 'Pretrained':
        teacher_cfg = model_cfg.teacher.copy()
        teacher_cfg.head.pop('init_cfg', None)
        path = save_state(MODELS.build(teacher_cfg),
                          osp.join(work, 'teacher.pth'))
        key = ('model.teacher_ckpt' if model_cfg.get('teacher_ckpt') else
               'model.teacher.head.init_cfg.checkpoint')
        overrides[key] = path
    for name, teacher_cfg in (model_cfg.get('teachers') or {}).items():
        if teacher_cfg.get('ckpt_path'):
            teacher = MODELS.build(teacher_cfg.build_cfg)
            path = save_state(teacher, osp.join(work, f'teacher_{name}.pth'))
            overrides[f'model.teachers.{name}.ckpt_path'] = path
    init_cfg = model_cfg.get('init_cfg')
    if init_cfg and init_cfg.get('type') == 'Pretrained':
        without_init = {**model_overrides, **overrides, 'model.init_cfg': None}
        algorithm = MODELS.build(load_config(config, without_init).model)
        path = save_state(algorithm, osp.join(work, 'pretrained.pth'))
        overrides['model.init_cfg.checkpoint'] = path
    return as_options({**model_overrides, **overrides})


# ----------------------------------------------------------------- cases
def case(config: str, algorithm: str, data: str, by_iter: bool = False,
         extra: Sequence[str] = (), model: Optional[Dict[str, Any]] = None,
         marks: Sequence[Any] = ()) -> Any:
    """One config to train.

    Args:
        config (str): Path under ``configs/distill/mmcls`` of the 1.x
            toolbox.
        algorithm (str): The algorithm class the config builds.
        data (str): ``'imagenet'``, ``'cifar'`` or ``'crd'`` (CIFAR under
            ``CRDDataset``).
        by_iter (bool): Whether the config's schedule counts iterations.
        extra (Sequence[str]): Further ``key=value`` options (data,
            schedule).
        model (dict, optional): ``model.*`` overrides, applied before the
            local checkpoints are saved too.
        marks (Sequence): pytest marks.
    """
    return pytest.param(
        config, algorithm, data, by_iter, list(extra), model or {},
        marks=marks,
        id=osp.splitext(osp.basename(config))[0])


E2E = pytest.mark.e2e
CASES = [
    case('abloss/abloss_pretrain_backbone_resnet50_resnet18_8xb32_in1k.py',
         'SingleTeacherDistill', 'imagenet', marks=[E2E]),
    case('abloss/abloss_logits_resnet50_resnet18_8xb32_in1k.py',
         'SingleTeacherDistill', 'imagenet', marks=[E2E]),
    case('byot/byot_resnet18_8xb16_cifar100.py', 'SelfDistill', 'cifar'),
    # 16384 negatives need as many images: 3 of the 4 will do here
    case('crd/crd_neck_r50_r18_8xb16_cifar10.py', 'SingleTeacherDistill',
         'crd', extra=[
             'train_dataloader.dataset.neg_num=3',
             'val_dataloader.dataset.neg_num=3',
             'model.distiller.distill_losses.loss_crd.neg_num=3'
         ]),
    # its warm-up (500 iterations) shortened to the 2 iterations run here
    case('dafl/dafl_logits_resnet34_resnet18_8xb256_cifar10.py',
         'DAFLDataFreeDistillation', 'cifar', by_iter=True, extra=[
             'param_scheduler.architecture.0.end=1',
             'param_scheduler.architecture.1.begin=1',
             'param_scheduler.generator.end=1'
         ]),
    # timm's ImageNet weights of the teacher are not downloaded; the
    # 20-epoch warm-up and the cosine after it fit into the one epoch run
    case('deit/deit-base_regnety160_pt-16xb64_in1k.py',
         'SingleTeacherDistill', 'imagenet',
         model={'model.teacher.backbone.pretrained': False}, marks=[E2E],
         extra=['param_scheduler.0.end=1', 'param_scheduler.1.begin=0']),
    case('dfad/dfad_logits_resnet34_resnet18_8xb32_cifar10.py',
         'DataFreeDistillation', 'cifar', by_iter=True),
    case('dist/dist_logits_resnet34_resnet18_8xb32_in1k.py',
         'SingleTeacherDistill', 'imagenet', marks=[E2E]),
    case('factor_transfer/factor-transfer_backbone_resnet50_resnet18_'
         '8xb16_cifar10_pretrain.py',
         'SingleTeacherDistill', 'cifar'),
    case('factor_transfer/'
         'factor-transfer_backbone_resnet50_resnet18_8xb16_cifar10_train.py',
         'SingleTeacherDistill', 'cifar'),
    case('kd/kd_logits_resnet50_mobilenet-v2_8xb32_in1k.py',
         'SingleTeacherDistill', 'imagenet', marks=[E2E]),
    # 2 iterations: its 5000-iteration constant warm-up shortened to 1
    case('kd/kd_logits_resnet50_shufflenet-v2-1x_16xb64_in1k.py',
         'SingleTeacherDistill', 'imagenet', extra=[
             'train_dataloader.dataset.indices=4', 'param_scheduler.0.end=1',
             'param_scheduler.1.begin=1'
         ], marks=[E2E]),
    case('ofd/ofd_backbone_resnet50_resnet18_8xb16_cifar10.py',
         'OverhaulFeatureDistillation', 'cifar', marks=[
             pytest.mark.skipif(
                 wideresnet_missing(),
                 reason='the WideResNet backbone is not registered yet')
         ]),
    case('rkd/rkd_neck_resnet34_resnet18_8xb32_in1k.py',
         'SingleTeacherDistill', 'imagenet', marks=[E2E]),
    case('zskt/zskt_backbone_logits_resnet34_resnet18_8xb16_cifar10.py',
         'DataFreeDistillation', 'cifar', by_iter=True),
]


def data_options(data: str, tmp_path) -> List[str]:
    if data == 'imagenet':
        from mmrazor.datasets import export_fashion_mnist
        root = export_fashion_mnist(str(tmp_path / 'imagenet'), per_class=1)
        return imagenet_options(root)
    if data == 'crd':
        return cifar_options('dataset.dataset')
    return cifar_options()


def distill_loss_names(model_cfg: Any) -> List[str]:
    """The losses the config's distillers compute (the generator's too):
    those with forward mappings (factor transfer's train stage inherits a
    loss it no longer maps)."""
    names = []
    for key in ('distiller', 'generator_distiller'):
        distiller = model_cfg.get(key) or {}
        names += list(distiller.get('loss_forward_mappings', {}))
    return names


def logged(name: str, scalars: Dict[str, Any]) -> bool:
    """Whether a loss was logged, under its own name or a prefix the
    algorithm gives it (``distill.``, ``generator.``)."""
    return any(
        key == f'train/{name}' or key.endswith(f'.{name}')
        for key in scalars if key.startswith('train/'))


@needs_reference
@pytest.mark.parametrize('config,algorithm,data,by_iter,extra,model', CASES)
def test_train_1x_mmcls_distill_config(config, algorithm, data, by_iter,
                                       extra, model, tmp_path, monkeypatch):
    config = osp.join(DISTILL_1X, config)
    work_dir = str(tmp_path / 'work')
    options = data_options(data, tmp_path) + list(extra)
    options += iteration_options() if by_iter else epoch_options()
    options += local_checkpoints(config, str(tmp_path), model)

    runner = train_in_process(config, work_dir, options, monkeypatch)

    assert type(runner.model).__name__ == algorithm
    scalars = runner.message_hub.log_scalars
    losses = distill_loss_names(runner.cfg.model)
    assert losses, 'the config names no distillation loss'
    missing = [name for name in losses if not logged(name, scalars)]
    assert not missing, (f'losses {missing} not logged; logged: '
                         f'{sorted(scalars)}')
    last = 'iter_2.pth' if by_iter else 'epoch_1.pth'
    assert osp.isfile(osp.join(work_dir, last))


# --------------------------------------------- distiller pieces 1.x needs
class TwoLogits(torch.nn.Module):
    """A linear classifier (recorded as ``fc``)."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def distill_logits(distiller, x: torch.Tensor) -> tuple:
    """The distiller's losses for a student and a teacher ``TwoLogits``,
    and their logits."""
    student, teacher = TwoLogits(0), TwoLogits(1)
    distiller.prepare_from_student(student)
    distiller.prepare_from_teacher(teacher)
    with distiller.teacher_recorders, torch.no_grad():
        teacher(x)
    with distiller.student_recorders:
        student(x)
    return distiller.compute_distill_losses(), student(x), teacher(x)


FC = dict(fc=dict(type='ModuleOutputs', source='fc'))
S_FC = dict(from_student=True, recorder='fc')
T_FC = dict(from_student=False, recorder='fc')


def test_dist_loss_reads_the_1x_argument_names_logits_S_logits_T():
    """``dist_logits_*``: DISTLoss's 1.x arguments are logits_S/T."""
    from mmrazor.models import ConfigurableDistiller
    distiller = ConfigurableDistiller(
        student_recorders=FC, teacher_recorders=FC,
        distill_losses=dict(loss_kl=dict(type='DISTLoss', loss_weight=2)),
        loss_forward_mappings=dict(
            loss_kl=dict(logits_S=S_FC, logits_T=T_FC)))
    losses, s, t = distill_logits(distiller, torch.randn(5, 4))

    def one_minus_pearson(a, b):  # per row, by hand
        a = a - a.mean(1, keepdim=True)
        b = b - b.mean(1, keepdim=True)
        return 1 - (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))

    ys, yt = s.softmax(1), t.softmax(1)
    expected = 2 * (one_minus_pearson(ys, yt).mean() +
                    one_minus_pearson(ys.t(), yt.t()).mean())
    torch.testing.assert_close(losses['loss_kl'], expected)


def test_losses_without_a_mapping_are_not_computed_as_in_1x():
    """``factor-transfer_*_train`` inherits ``loss_s4_pretrain`` from the
    pretrain stage but maps only ``loss_s4``."""
    import logging

    from mmengine.logging import MMLogger
    from mmrazor.models import ConfigurableDistiller
    logger = MMLogger.get_current_instance()
    warnings = []

    class Keep(logging.Handler):

        def emit(self, record: logging.LogRecord) -> None:
            warnings.append(record.getMessage())

    keep = Keep(level=logging.WARNING)
    logger.addHandler(keep)
    try:
        distiller = ConfigurableDistiller(
            student_recorders=FC, teacher_recorders=FC,
            distill_losses=dict(
                loss_l1=dict(type='L1Loss'),
                loss_unused=dict(type='L1Loss')),
            loss_forward_mappings=dict(
                loss_l1=dict(s_feature=S_FC, t_feature=T_FC)))
    finally:
        logger.removeHandler(keep)
    assert any('loss_unused' in w for w in warnings), warnings
    losses, s, t = distill_logits(distiller, torch.randn(5, 4))
    assert set(losses) == {'loss_l1'}
    torch.testing.assert_close(losses['loss_l1'], (s - t).abs().mean())
    # still, a distiller whose losses have no mapping at all is refused
    with pytest.raises(KeyError, match='loss_l1'):
        ConfigurableDistiller(
            student_recorders=FC, teacher_recorders=FC,
            distill_losses=dict(loss_l1=dict(type='L1Loss')))
