"""The original MMRazor 1.x FBKD, MGD and PKD detection distillation configs,
trained by ``tools/train.py``.

As in ``test_configs_1x_cwd.py`` (whose helpers these tests reuse), each
test runs one original config (its ``mmdet::`` bases read from the installed
mmdet) for two iterations on the Fashion-MNIST dense data, changing on the
command line only the data paths, sizes and lengths and the downloads: the
teacher's ``teacher_ckpt`` (a URL) becomes a local file holding a freshly
built teacher, and the student's pretrained weights are switched off.
"""
import os.path as osp
from typing import Callable, List, Sequence

import pytest

from test_configs_1x_cwd import (assert_distilled, det_options,
                                 needs_reference, train)

pytestmark = pytest.mark.det_seg

FBKD_CONFIG = 'mmdet/fbkd/fbkd_fpn_faster-rcnn_r101_faster-rcnn_r50_1x_coco.py'
MGD_CONFIG = 'mmdet/mgd/mgd_fpn_retina_x101_retina_r50_2x_coco.py'
PKD_FRCNN_CONFIG = ('mmdet/pkd/pkd_fpn_faster-rcnn_r101_faster-rcnn_r50_2x_'
                    'coco.py')
PKD_RETINA_CONFIG = 'mmdet/pkd/pkd_fpn_retina_x101_retina_r50_2x_coco.py'
PKD_FCOS_CONFIG = 'mmdet/pkd/pkd_fpn_fcos_x101_retina_r50_1x_coco.py'
PKD_SWIN_CONFIG = 'mmdet/pkd/pkd_fpn_mask-rcnn_swin_retina_r50_2x_coco.py'
PKD_REPPOINTS_CONFIG = ('mmdet/pkd/pkd_fpn_reppoints_x101-dcn_reppoints_r50_'
                        '2x_coco.py')

#: A student given by ``cfg_path``: no published weights (``pretrained``)
#: and no torchvision backbone, through the ``model`` overrides.
CFG_PATH_STUDENT = ['model.architecture.pretrained=False',
                    'model.architecture.model.backbone.init_cfg=None']
#: MGD's student is the base config's RetinaNet itself, whose backbone
#: loads torchvision weights and whose neck and head load the teacher's
#: checkpoint (a URL).
MGD_STUDENT = ['model.architecture.backbone.init_cfg=None',
               'model.architecture.neck.init_cfg=None',
               'model.architecture.bbox_head.init_cfg=None']


def options_with_student(student: List[str]) -> Callable[[str], List[str]]:
    """The CWD test's detection overrides (dense COCO data, 256 x 256
    images, one epoch of two iterations, no validation), with the student
    overrides replaced by ``student``.

    Args:
        student (list[str]): ``key=value`` overrides of the student.

    Returns:
        callable: Teacher checkpoint -> the overrides.
    """

    def options_of(teacher_ckpt: str) -> List[str]:
        data = [opt for opt in det_options(teacher_ckpt)
                if not opt.startswith('model.architecture.')]
        return data + student

    return options_of


def loss_names(prefix: str, levels: int) -> List[str]:
    """``['<prefix>0', ..., '<prefix><levels - 1>']``."""
    return [f'{prefix}{i}' for i in range(levels)]


@needs_reference
def test_fbkd_fpn_faster_rcnn_coco_1x(tmp_path, monkeypatch) -> None:
    runner, teacher, work_dir = train(FBKD_CONFIG, tmp_path,
                                      options_with_student(CFG_PATH_STUDENT),
                                      monkeypatch)
    assert_distilled(runner, teacher, loss_names('loss_s', 4), work_dir)
    model = runner.model
    assert type(model).__name__ == 'SingleTeacherDistill'
    assert type(model.student).__name__ == 'FasterRCNN'
    assert model.student.backbone.depth == 50
    assert model.teacher.backbone.depth == 101
    connectors = model.distiller.connectors
    assert type(connectors['loss_s0_sfeat']).__name__ == \
        'FBKDStudentConnector'
    assert type(connectors['loss_s0_tfeat']).__name__ == \
        'FBKDTeacherConnector'


@needs_reference
def test_mgd_fpn_retina_coco_2x(tmp_path, monkeypatch) -> None:
    runner, teacher, work_dir = train(MGD_CONFIG, tmp_path,
                                      options_with_student(MGD_STUDENT),
                                      monkeypatch)
    assert_distilled(runner, teacher, loss_names('loss_mgd_fpn', 5),
                     work_dir)
    model = runner.model
    assert type(model).__name__ == 'FpnTeacherDistill'
    assert type(model.student).__name__ == 'RetinaNet'
    assert model.student.backbone.depth == 50
    assert type(model.teacher.backbone).__name__ == 'ResNeXt'
    assert model.distiller.connectors['s_fpn0_connector'].lambda_mgd == 0.65
    assert model.distiller.distill_losses['loss_mgd_fpn0'].alpha_mgd == \
        0.00002


def check_pkd(config: str,
              tmp_path,
              monkeypatch,
              student: str,
              teacher_type: str,
              loss_weight: float,
              extra_options: Sequence[str] = ()) -> None:
    """Train a PKD config and check its four FPN losses and models.

    Args:
        config (str): The config, relative to the 1.x distill configs.
        tmp_path: pytest's folder.
        monkeypatch: pytest's fixture.
        student (str): The student detector's class name.
        teacher_type (str): The teacher detector's class name.
        loss_weight (float): The ``loss_weight`` the config gives every
            ``PKDLoss``.
        extra_options (Sequence[str]): Further ``key=value`` overrides.
            Defaults to none.
    """
    options_of = options_with_student(CFG_PATH_STUDENT + list(extra_options))
    runner, teacher, work_dir = train(config, tmp_path, options_of,
                                      monkeypatch)
    assert_distilled(runner, teacher, loss_names('loss_pkd_fpn', 4),
                     work_dir)
    model = runner.model
    assert type(model).__name__ == 'FpnTeacherDistill'
    assert type(model.student).__name__ == student
    assert type(model.teacher).__name__ == teacher_type
    for name in loss_names('loss_pkd_fpn', 4):
        loss = model.distiller.distill_losses[name]
        assert type(loss).__name__ == 'PKDLoss'
        assert loss.loss_weight == loss_weight


@needs_reference
def test_pkd_fpn_faster_rcnn_coco_2x(tmp_path, monkeypatch) -> None:
    check_pkd(PKD_FRCNN_CONFIG, tmp_path, monkeypatch, 'FasterRCNN',
              'FasterRCNN', loss_weight=6)


@needs_reference
def test_pkd_fpn_retina_x101_coco_2x(tmp_path, monkeypatch) -> None:
    # loss_weight=10 overrides the faster-rcnn base config's 6
    check_pkd(PKD_RETINA_CONFIG, tmp_path, monkeypatch, 'RetinaNet',
              'RetinaNet', loss_weight=10)


@needs_reference
def test_pkd_fpn_fcos_x101_retina_coco_1x(tmp_path, monkeypatch) -> None:
    check_pkd(PKD_FCOS_CONFIG, tmp_path, monkeypatch, 'RetinaNet', 'FCOS',
              loss_weight=10)


@needs_reference
def test_pkd_fpn_mask_rcnn_swin_retina_coco_2x(tmp_path,
                                                monkeypatch) -> None:
    check_pkd(PKD_SWIN_CONFIG, tmp_path, monkeypatch, 'RetinaNet',
              'MaskRCNN', loss_weight=6)


@needs_reference
def test_pkd_fpn_reppoints_x101_dcn_coco_2x(tmp_path, monkeypatch) -> None:
    # mmcv's compiled DeformConv2d (the teacher's dconv c3-c5 stages)
    # needs NCHW inputs: the CPU ChannelsLastHook leaves such models as
    # they are (no option needed)
    check_pkd(PKD_REPPOINTS_CONFIG, tmp_path, monkeypatch,
              'RepPointsDetector', 'RepPointsDetector', loss_weight=10)


CWD_VIS_CONFIG = ('mmdet/cwd/cwd_fpn_retina_r101_retina_r50_1x_coco_'
                  'visualization.py')


@needs_reference
def test_cwd_retina_visualization_hook_draws_fpn_levels(
        tmp_path, monkeypatch) -> None:
    """The 1.x visualization config: its RazorVisualizationHook draws the
    student's FPN levels p3-p6 for each test image."""
    runner, teacher, work_dir = train(
        CWD_VIS_CONFIG, tmp_path, options_with_student(CFG_PATH_STUDENT),
        monkeypatch)
    hooks = [h for h in runner.hooks
             if type(h).__name__ == 'RazorVisualizationHook']
    assert len(hooks) == 1 and hooks[0].enabled
    # predictions dumped rather than scored (the heads are untrained)
    runner._test_evaluator = dict(
        type='mmdet.DumpDetResults',
        out_file_path=str(tmp_path / 'results.pkl'))
    runner.test()
    names = sorted(osp.basename(p) for p in hooks[0].written)
    assert len(names) == 2 * 4, names  # two test images, four levels
    assert {n.rsplit('_', 1)[1] for n in names} == {
        'p3.png', 'p4.png', 'p5.png', 'p6.png'
    }
    assert all(osp.isfile(p) for p in hooks[0].written)


@needs_reference
def test_cwd_fpn_faster_rcnn_coco_1x(tmp_path, monkeypatch) -> None:
    runner, teacher, work_dir = train(
        'mmdet/cwd/cwd_fpn_frcnn_r101_frcnn_r50_1x_coco.py', tmp_path,
        options_with_student(CFG_PATH_STUDENT), monkeypatch)
    assert_distilled(runner, teacher, loss_names('loss_cwd_fpn', 5),
                     work_dir)
    assert type(runner.model).__name__ == 'FpnTeacherDistill'
    assert type(runner.model.student).__name__ == 'FasterRCNN'
