"""The original MMRazor 1.x detection PTQ configs (RetinaNet-R50 and
YOLOX-s, OpenVINO and TensorRT) through ``tools/ptq.py``.

Each test runs one original config (its ``mmdet::`` base read from the
installed mmdet) with only data-level settings changed on the command line:
COCO becomes the Fashion-MNIST dense data (data paths, its 10 classes, so
also the head's ``num_classes``), the loaders read two images one at a time
in the main process, the images are resized to 256 pixels instead of
1333 x 800 / 640 (CPU time), calibration runs 2 steps, and the float
checkpoint (a URL) is a local file holding a freshly built detector.
"""
import os.path as osp
from typing import List

import pytest
import torch

from test_configs_1x_cwd import DENSE, DENSE_CLASSES, loader_options

pytestmark = pytest.mark.det_seg

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PTQ_1X = osp.join(
    osp.dirname(REPO), 'shared', 'reference', 'mmrazor-1.x', 'configs',
    'quantization', 'ptq', 'base')
CONFIGS = [
    'ptq_openvino_retina_r50_1x_coco_calib32xb32.py',
    'ptq_tensorrt_retina_r50_1x_coco_calib32xb32.py',
    'ptq_openvino_yolox_s_8xb8-300e_coco_calib32xb32.py',
    'ptq_tensorrt_yolox_s_8xb8-300e_coco_calib32xb32.py',
]
#: The loaders PTQLoop reads: the evaluated one and the calibration one.
LOADERS = ('test_dataloader', 'test_cfg.calibrate_dataloader')
WEIGHT_SCALE = '.weight_fake_quant.scale'


def data_options(classes_file: str) -> List[str]:
    """COCO -> two dense images per loader, resized to 256 pixels.

    Args:
        classes_file (str): A text file of the dense classes, one a line
            (the dataset's ``metainfo.classes``: ``--cfg-options`` drops the
            space of ``'Ankle boot'``).

    Returns:
        list[str]: ``key=value`` overrides.
    """
    opts = [
        f'test_evaluator.ann_file={DENSE}/annotations/instances_val.json',
        f'model.architecture.bbox_head.num_classes={len(DENSE_CLASSES)}',
    ]
    for loader in LOADERS:
        opts += loader_options(loader, 1)
        opts += [
            f'{loader}.dataset.data_root={DENSE}',
            f'{loader}.dataset.ann_file=annotations/instances_val.json',
            f'{loader}.dataset.data_prefix.img=images/val/',
            f'{loader}.dataset.metainfo.classes={classes_file}',
            # Resize(scale) of both configs' test pipelines
            f'{loader}.dataset.pipeline.1.scale=(256,256)',
        ]
    return opts


def save_float_detector(config: str, path: str) -> float:
    """Build the config's detector (10 classes, no pretrained backbone) and
    save it as a float checkpoint.

    The head's biases are zeroed: an untrained head's prior bias (-4.6)
    scores every box below the score threshold, and CocoMetric returns no
    bbox metric without boxes.

    Args:
        config (str): The PTQ config.
        path (str): The checkpoint file to write.

    Returns:
        float: The ``eps`` of the detector's BN layers.
    """
    from mmrazor.apis.config_compat import load_config
    from mmrazor.registry import MODELS
    from tool_runs import default_scopes_restored
    arch = load_config(config, {}).model.architecture
    arch.bbox_head.num_classes = len(DENSE_CLASSES)
    arch.backbone.init_cfg = None
    with default_scopes_restored():
        detector = MODELS.build(arch)
        detector.init_weights()
    with torch.no_grad():
        for name, param in detector.bbox_head.named_parameters():
            if name.endswith('bias'):
                param.zero_()
    torch.save({'state_dict': detector.state_dict()}, path)
    eps = {m.eps for m in detector.modules()
           if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}
    assert len(eps) == 1, eps
    return eps.pop()


@pytest.mark.skipif(
    not osp.isdir(PTQ_1X), reason='1.x reference configs not available')
@pytest.mark.parametrize('config', CONFIGS)
def test_1x_det_ptq_config_through_the_tool(config, tmp_path, monkeypatch):
    """The calibration steps run, a bbox metric comes back, and each weight
    fake-quant's scale is max |w| of its output channel / 127 (symmetric
    int8 on [-127, 127]), w being the conv weight with its BN folded in
    (gamma / sqrt(running_var + eps)) where the conv and BN are fused."""
    from mmrazor.models.algorithms.quantization import MMArchitectureQuant
    from tool_runs import default_scopes_restored, load_tool
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    torch.manual_seed(0)
    config = osp.join(PTQ_1X, config)
    float_path = str(tmp_path / 'float.pth')
    eps = save_float_detector(config, float_path)
    classes_file = tmp_path / 'classes.txt'
    classes_file.write_text('\n'.join(DENSE_CLASSES) + '\n')
    steps = []
    original = MMArchitectureQuant.calibrate_step
    monkeypatch.setattr(MMArchitectureQuant, 'calibrate_step',
                        lambda self, data: steps.append(1) or original(
                            self, data))
    with default_scopes_restored():
        metrics = load_tool('ptq.py').main([
            config, float_path, '--work-dir',
            str(tmp_path / 'work'), '--cfg-options',
            'test_cfg.calibrate_steps=2', *data_options(str(classes_file))
        ])
    assert len(steps) == 2
    assert 0.0 <= metrics['coco/bbox_mAP'] <= 1.0, metrics
    state = torch.load(
        str(tmp_path / 'work' / 'model_ptq.pth'),
        weights_only=True)['state_dict']
    checked = fused = 0
    for key, scale in state.items():
        if not key.endswith(WEIGHT_SCALE):
            continue
        layer = key[:-len(WEIGHT_SCALE)]
        weight = state[layer + '.weight'].flatten(1)
        if layer + '.bn.weight' in state:
            gamma = state[layer + '.bn.weight']
            std = torch.sqrt(state[layer + '.bn.running_var'] + eps)
            weight = weight * (gamma / std)[:, None]
            fused += 1
        amax = weight.abs().max(dim=1).values
        expected = torch.clamp(amax / 127, min=torch.finfo(torch.float32).eps)
        torch.testing.assert_close(scale, expected, rtol=1e-5, atol=1e-12)
        checked += 1
    assert checked >= 20 and fused >= 10, (checked, fused)
