"""DetNAS on a real mmdet RetinaNet and the Fashion-MNIST dense data: the
small configs build, a supernet step trains only the sampled path, the
resource estimate is the backbone's alone (checked against a hand count),
and a short evolution search on mAP returns a subnet under the FLOPs
budget that the subnet config loads."""
import copy
import json
import os.path as osp
import random

import pytest

pytest.importorskip('mmcv.ops')
pytestmark = pytest.mark.det_seg

import torch  # noqa: E402
import yaml  # noqa: E402
from det_seg_utils import DENSE_ROOT, REPO, real_batch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from torch import nn  # noqa: E402

from mmrazor.registry import MODELS  # noqa: E402

CFG_DIR = osp.join(REPO, 'configs', 'nas', 'detnas')
SMALL = 'detnas_shufflenet-s_retinanet_{}_fashion-mnist-dense.py'
COCO = 'detnas_frcnn_shufflenet_{}_coco_1x.py'
#: (channels, blocks) of the small backbone's stages, as in its config.
SMALL_STAGES = [(24, 1), (48, 2), (96, 2), (160, 1)]
CHOICES = ['shuffle_3x3', 'shuffle_5x5', 'shuffle_7x7', 'shuffle_xception']


def _small_cfg(kind: str = 'supernet') -> Config:
    """A small DetNAS config with the data root made absolute."""
    cfg = Config.fromfile(osp.join(CFG_DIR, SMALL.format(kind)))
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = DENSE_ROOT
        loader.num_workers = 0
    cfg.val_evaluator.ann_file = osp.join(DENSE_ROOT, 'annotations',
                                          'instances_val.json')
    return cfg


def _build(cfg: Config):
    from mmrazor.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    return MODELS.build(copy.deepcopy(cfg.model))


def _hand_macs_and_params(subnet: dict, hw: int = 96):
    """Multiply-adds and parameters of a plain backbone holding the chosen
    blocks, built block by block (no mutable, no mmrazor estimator): every
    conv costs ``output elements * in_channels / groups * kh * kw``."""
    from mmcv.cnn import ConvModule

    from mmrazor.models.ops import ShuffleBlock, ShuffleXception
    layers = [ConvModule(3, 16, 3, stride=2, padding=1,
                         norm_cfg=dict(type='BN'))]
    in_channels = 16
    for s, (channels, num_blocks) in enumerate(SMALL_STAGES):
        for b in range(num_blocks):
            choice = subnet[f'backbone.layers.{s}.{b}']
            kwargs = dict(in_channels=in_channels, out_channels=channels,
                          stride=2 if b == 0 else 1)
            if choice == 'shuffle_xception':
                layers.append(ShuffleXception(**kwargs))
            else:
                layers.append(
                    ShuffleBlock(kernel_size=int(choice[-1]), **kwargs))
            in_channels = channels
    static = nn.Sequential(*layers).eval()
    macs = []

    def count(conv, inputs, output):
        kh, kw = conv.kernel_size
        macs.append(output.numel() * conv.in_channels // conv.groups * kh *
                    kw)

    hooks = [m.register_forward_hook(count) for m in static.modules()
             if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        static(torch.zeros(1, 3, hw, hw))
    for h in hooks:
        h.remove()
    return sum(macs), sum(p.numel() for p in static.parameters())


def test_small_supernet_config_builds_a_retinanet_with_fpn_levels():
    algo = _build(_small_cfg())
    assert type(algo).__name__ == 'DetNAS'
    assert type(algo.architecture).__name__ == 'RetinaNet'
    keys = list(algo.mutator.search_groups)
    assert keys == [f'backbone.layers.{s}.{b}'
                    for s, (_, n) in enumerate(SMALL_STAGES)
                    for b in range(n)]
    algo.sample_subnet()
    feats = algo.backbone(torch.zeros(1, 3, 96, 96))
    # strides 8 / 16 / 32 on a 96x96 canvas, channels of stages 1-3
    assert [tuple(f.shape[1:]) for f in feats] == [(48, 12, 12),
                                                   (96, 6, 6), (160, 3, 3)]
    head = algo.architecture.bbox_head
    assert head.num_classes == 10
    assert head.prior_generator.strides == [(8, 8), (16, 16), (32, 32)]


def test_train_step_gives_finite_losses_and_trains_only_the_sampled_path():
    from mmengine.optim import OptimWrapper
    torch.manual_seed(0)
    random.seed(0)
    algo = _build(_small_cfg())
    before = {n: p.detach().clone() for n, p in algo.named_parameters()}
    wrapper = OptimWrapper(torch.optim.SGD(algo.parameters(), lr=0.1))
    log = algo.train_step(real_batch('det', DENSE_ROOT, num=4), wrapper)
    assert {'loss', 'loss_cls', 'loss_bbox'} <= set(log)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in log.values())
    assert float(log['loss_cls']) > 0 and float(log['loss_bbox']) > 0

    chosen = algo.mutator.current_choices  # the path sampled by the step
    changed = {n for n, p in algo.named_parameters()
               if not torch.equal(p.detach(), before[n])}
    for key, choice in chosen.items():
        prefix = f'architecture.{key}.candidates.'
        for name in CHOICES:
            params = [n for n in before if n.startswith(prefix + name + '.')]
            assert params, f'no parameters under {prefix + name}'
            moved = [n for n in params if n in changed]
            if name == choice:
                assert moved, f'{key}: the sampled {name} was not trained'
            else:
                assert not moved, f'{key}: unsampled {name} changed: {moved}'
    for part in ('architecture.neck.', 'architecture.bbox_head.',
                 'architecture.backbone.conv1.'):
        assert any(n.startswith(part) for n in changed), part


def test_estimate_resources_counts_the_backbone_only():
    from mmrazor.models.task_modules import ResourceEstimator
    algo = _build(_small_cfg())
    keys = list(algo.mutator.search_groups)
    rng = random.Random(3)
    for subnet in ({k: 'shuffle_3x3' for k in keys},
                   {k: 'shuffle_7x7' for k in keys},
                   {k: rng.choice(CHOICES) for k in keys}):
        algo.mutator.set_choices(subnet)
        got = algo.estimate_resources()
        macs, params = _hand_macs_and_params(subnet)
        assert got['flops'] == macs, subnet
        assert got['params'] == params, subnet
    # The detector as a whole (FPN and head included) costs far more, so
    # the estimate above really left them out.
    whole = ResourceEstimator((1, 3, 96, 96)).estimate(algo.architecture)
    assert whole['flops'] > 3 * got['flops']


def test_wrapped_detector_writes_subnet_keys_the_subnet_config_loads():
    cfg = _small_cfg()
    cfg.model.architecture = dict(
        type='MMDetArchitecture', model=cfg.model.architecture)
    algo = _build(cfg)
    assert algo.backbone_name == 'model.backbone'
    algo.sample_subnet()
    dumped = algo.mutator.dump_subnet()
    assert set(dumped) == {f'backbone.layers.{s}.{b}'
                           for s, (_, n) in enumerate(SMALL_STAGES)
                           for b in range(n)}
    expected = algo.estimate_resources()
    plain = _small_cfg()
    plain.model.fix_subnet = dumped
    fixed = _build(plain)
    assert fixed.mutator is None
    assert fixed.estimate_resources() == expected


def test_short_search_returns_a_subnet_under_the_flops_budget(tmp_path):
    from mmrazor.apis import run_search
    from mmrazor.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = _small_cfg('search')
    budget = cfg.searcher.constraints.flops
    cfg.searcher.update(
        candidate_pool_size=3, candidate_top_k=2, max_epoch=2,
        num_mutation=1, num_crossover=1, calib_batches=1)
    cfg.train_dataloader.batch_size = 4
    # Score on 8 validation canvases; the ground truth of the metric is
    # then taken from those samples (not from the whole annotation file).
    cfg.val_dataloader.batch_size = 8
    cfg.val_dataloader.dataset.indices = 8
    cfg.val_dataloader.dataset.pipeline[-1].meta_keys += ('instances', )
    cfg.val_evaluator.ann_file = None
    cfg.work_dir = str(tmp_path)
    cfg.launcher = 'none'
    # A supernet checkpoint (untrained weights suffice for the budget).
    torch.manual_seed(0)
    ckpt = str(tmp_path / 'supernet.pth')
    torch.save({'state_dict': _build(cfg).state_dict(), 'meta': {}}, ckpt)

    best = run_search(cfg, ckpt)

    with open(tmp_path / 'best_subnet.yaml') as f:
        written = yaml.safe_load(f)
    assert written == best
    subnet = {k: v['chosen'] for k, v in written.items()}
    assert set(subnet) == {f'backbone.layers.{s}.{b}'
                           for s, (_, n) in enumerate(SMALL_STAGES)
                           for b in range(n)}
    assert _hand_macs_and_params(subnet)[0] <= budget
    with open(tmp_path / 'candidates.json') as f:
        rows = json.load(f)
    assert len(rows) >= 3
    for row in rows:
        assert row['score'] == row['metrics']['coco/bbox_mAP']
        assert row['resources']['flops'] <= budget
    # The subnet config loads the written YAML and counts the same FLOPs.
    sub = _small_cfg('subnet')
    sub.model.fix_subnet = str(tmp_path / 'best_subnet.yaml')
    assert _build(sub).estimate_resources()['flops'] == \
        _hand_macs_and_params(subnet)[0]


@pytest.mark.parametrize('kind', ['supernet', 'search', 'subnet'])
def test_coco_configs_parse_and_budget_is_inside_the_space(kind):
    cfg = Config.fromfile(osp.join(CFG_DIR, COCO.format(kind)))
    arch = cfg.model.architecture
    assert cfg.model.type == 'DetNAS'
    assert arch.type == 'mmdet.FasterRCNN'
    assert arch.neck.in_channels == [64, 160, 320, 640]
    assert cfg.val_evaluator.ann_file.startswith('data/coco/')
    if kind == 'subnet':
        assert cfg.model.fix_subnet.endswith('best_subnet.yaml')
    if kind == 'supernet':
        # The backbone starts from the ImageNet SPOS supernet's weights.
        assert arch.backbone.init_cfg.prefix == 'architecture.backbone.'
        # One sampled path of the Faster R-CNN computes finite losses on a
        # small image with one box (the checkpoint is not loaded).
        from mmdet.structures import DetDataSample
        from mmengine.structures import InstanceData
        arch.backbone.init_cfg = None
        algo = _build(cfg)
        shape = (128, 128)
        sample = DetDataSample(metainfo=dict(
            img_shape=shape, ori_shape=shape, pad_shape=shape,
            batch_input_shape=shape, scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor([[10.0, 20.0, 70.0, 90.0]]),
            labels=torch.tensor([3]))
        torch.manual_seed(0)
        losses = algo(torch.rand(1, 3, *shape), [sample], mode='loss')
        assert {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls',
                'loss_bbox'} <= set(losses)
        for name, value in losses.items():
            total = sum(value) if isinstance(value, list) else value
            assert torch.isfinite(torch.as_tensor(total)).all(), name
    if kind != 'search':
        return
    assert cfg.searcher.score_key == 'coco/bbox_mAP'
    assert arch.backbone.init_cfg is None
    # The budget separates the space: the all-3x3 path fits under it, the
    # all-7x7 one does not (backbone alone, at 224x224).
    algo = _build(cfg)
    keys = list(algo.mutator.search_groups)
    flops = {}
    for choice in ('shuffle_3x3', 'shuffle_7x7'):
        algo.mutator.set_choices({k: choice for k in keys})
        flops[choice] = algo.estimate_resources()['flops']
    budget = cfg.searcher.constraints.flops
    assert flops['shuffle_3x3'] < budget < flops['shuffle_7x7']
