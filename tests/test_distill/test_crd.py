"""CRD: the loss against the NCE formula written out on a tiny memory, the
dataset's contrast indices and their packing."""
import math

import numpy as np
import pytest
import torch
from mmengine.dataset import BaseDataset

from mmrazor.registry import DATASETS, MODELS, TRANSFORMS


@pytest.fixture(autouse=True)
def float64():
    """Compare in double precision; restore the default afterwards."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    np.random.seed(0)
    yield
    torch.set_default_dtype(old)


def build(cfg, registry=MODELS):
    import mmrazor.datasets  # noqa: F401
    import mmrazor.models  # noqa: F401
    return registry.build(cfg)


def unit(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def nce_by_hand(anchors, memory, contrast, z, n_data, eps=1e-7):
    """Eq. 18 with loops: column 0 positive, the others negatives."""
    k = len(contrast[0]) - 1
    noise = k / n_data
    total = 0.0
    for i, a in enumerate(anchors):
        for col, j in enumerate(contrast[i]):
            p = math.exp(sum(x * y for x, y in zip(memory[j], a)) / 0.5) / z
            if col == 0:
                total += math.log(p / (p + noise + eps))
            else:
                total += math.log(noise / (p + noise + eps))
    return -total / len(anchors)


def mean_exp(anchors, memory, contrast):
    values = [
        math.exp(sum(x * y for x, y in zip(memory[j], a)) / 0.5)
        for i, a in enumerate(anchors) for j in contrast[i]
    ]
    return sum(values) / len(values)


def test_crd_loss_formula_and_memory_update():
    loss = build(
        dict(type='CRDLoss', loss_weight=0.8, temperature=0.5, neg_num=2,
             sample_n=6, dim_out=2, momentum=0.25))
    mem_s = [unit([math.cos(a), math.sin(a)]) for a in range(6)]
    mem_t = [unit([1.0, 0.1 * a]) for a in range(6)]
    loss.memory_student.copy_(torch.tensor(mem_s))
    loss.memory_teacher.copy_(torch.tensor(mem_t))
    s = [unit([1.0, 2.0]), unit([-1.0, 0.5])]
    t = [unit([0.3, 1.0]), unit([2.0, -1.0])]
    contrast = [[1, 3, 4], [5, 0, 2]]
    samples = [
        dict(sample_idx=1, contrast_sample_idxs=contrast[0]),
        dict(sample_idx=5, contrast_sample_idxs=contrast[1]),
    ]
    s_feats = torch.tensor(s, requires_grad=True)
    value = loss(s_feats, torch.tensor(t), samples)
    z_s = mean_exp(s, mem_t, contrast) * 6
    z_t = mean_exp(t, mem_s, contrast) * 6
    expect = 0.8 * (nce_by_hand(s, mem_t, contrast, z_s, 6) +
                    nce_by_hand(t, mem_s, contrast, z_t, 6))
    assert value.item() == pytest.approx(expect, rel=1e-9)
    value.backward()
    assert s_feats.grad is not None and s_feats.grad.abs().sum() > 0
    # memory rows 1 and 5 moved towards the batch, renormalised
    new_s, new_t = [list(r) for r in mem_s], [list(r) for r in mem_t]
    for row, (fs, ft) in zip((1, 5), zip(s, t)):
        new_s[row] = unit([0.25 * m + 0.75 * f
                           for m, f in zip(mem_s[row], fs)])
        new_t[row] = unit([0.25 * m + 0.75 * f
                           for m, f in zip(mem_t[row], ft)])
    assert torch.allclose(loss.memory_student, torch.tensor(new_s))
    assert torch.allclose(loss.memory_teacher, torch.tensor(new_t))
    # second call: the normalisation constants stay those of the first
    loss.eval()
    value = loss(torch.tensor(t), torch.tensor(s), samples)
    expect = 0.8 * (nce_by_hand(t, new_t, contrast, z_s, 6) +
                    nce_by_hand(s, new_s, contrast, z_t, 6))
    assert value.item() == pytest.approx(expect, rel=1e-9)
    # eval mode: no memory update
    assert torch.allclose(loss.memory_student, torch.tensor(new_s))


def test_crd_loss_uniform_negatives_without_contrast_indices():
    loss = build(dict(type='CRDLoss', neg_num=5, sample_n=10, dim_out=3))
    feats = torch.nn.functional.normalize(torch.randn(4, 3), dim=1)
    value = loss(feats, feats, [dict(sample_idx=i) for i in range(4)])
    assert torch.isfinite(value)


def test_crd_loss_errors():
    loss = build(dict(type='CRDLoss', neg_num=2, sample_n=6, dim_out=2))
    feats = torch.randn(2, 2)
    with pytest.raises(ValueError, match=r's_feats has shape \(2, 3\)'):
        loss(torch.randn(2, 3), feats, [])
    with pytest.raises(ValueError, match=r'\[0, 7\].*sample_n=6'):
        loss(feats, feats,
             [dict(sample_idx=0, contrast_sample_idxs=[0, 1, 2]),
              dict(sample_idx=7, contrast_sample_idxs=[7, 1, 2])])
    with pytest.raises(ValueError, match=r'\(2, 2\), expected \(2, 3\)'):
        loss(feats, feats, [dict(sample_idx=0, contrast_sample_idxs=[0, 1]),
                            dict(sample_idx=1, contrast_sample_idxs=[1, 2])])
    with pytest.raises(KeyError, match='sample_idx'):
        loss(feats, feats, [dict(), dict()])


# -------------------------------------------------------------- dataset
class TinyDataset(BaseDataset):
    """Three classes; labels as given."""

    LABELS = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 0, 1]

    def load_data_list(self):
        return [
            dict(gt_label=label, img=np.full((2, 2, 3), i, np.uint8))
            for i, label in enumerate(self.LABELS)
        ]


@pytest.mark.parametrize('sample_mode', ['exact', 'random'])
def test_crd_dataset_negatives_never_share_the_class(sample_mode):
    dataset = build(
        dict(type='CRDDataset', dataset=TinyDataset(), neg_num=20,
             percent=1.0, sample_mode=sample_mode), DATASETS)
    labels = TinyDataset.LABELS
    assert len(dataset) == len(labels)
    for _ in range(5):
        for idx in range(len(labels)):
            info = dataset.get_data_info(idx)
            assert info['sample_idx'] == idx
            contrast = info['contrast_sample_idxs']
            assert contrast.shape == (21, ) and contrast.dtype == np.int64
            positive = int(contrast[0])
            if sample_mode == 'exact':
                assert positive == idx
            assert labels[positive] == labels[idx]
            assert all(labels[j] != labels[idx] for j in contrast[1:])


def test_crd_dataset_percent_and_test_mode():
    dataset = build(
        dict(type='CRDDataset', dataset=TinyDataset(), neg_num=3,
             percent=0.5), DATASETS)
    # class 0 has 7 negatives (classes 1 and 2) -> int(7 * 0.5) = 3
    pool = set(dataset.cls_negative[0].tolist())
    assert len(pool) == 3 and all(TinyDataset.LABELS[j] != 0 for j in pool)
    for _ in range(10):
        assert set(dataset.get_data_info(0)['contrast_sample_idxs'][1:]) \
            <= pool
    test_set = build(
        dict(type='CRDDataset', dataset=TinyDataset(test_mode=True),
             neg_num=3, percent=1.0), DATASETS)
    info = test_set.get_data_info(4)
    assert info['sample_idx'] == 4 and 'contrast_sample_idxs' not in info
    with pytest.raises(ValueError, match="sample_mode='relax'"):
        build(dict(type='CRDDataset', dataset=TinyDataset(), neg_num=3,
                   percent=1.0, sample_mode='relax'), DATASETS)


def test_pack_crd_inputs_feed_the_loss():
    pack = build(dict(type='PackCRDClsInputs'), TRANSFORMS)
    dataset = build(
        dict(type='CRDDataset', dataset=TinyDataset(pipeline=[pack]),
             neg_num=4, percent=1.0), DATASETS)
    items = [dataset[i] for i in (2, 7)]
    samples = [item['data_samples'] for item in items]
    assert items[0]['inputs'].shape == (3, 2, 2)
    assert samples[0].sample_idx.dtype == torch.long
    assert samples[0].sample_idx.item() == 2
    assert 'sample_idx' not in samples[0].metainfo
    contrast = samples[1].contrast_sample_idxs
    assert contrast.dtype == torch.long and contrast.shape == (5, )
    assert contrast[0].item() == 7
    assert samples[1].gt_label.item() == TinyDataset.LABELS[7]
    loss = build(dict(type='CRDLoss', neg_num=4, sample_n=12, dim_out=3))
    feats = torch.nn.functional.normalize(torch.randn(2, 3), dim=1)
    before = loss.memory_student.clone()
    assert torch.isfinite(loss(feats, feats, samples))
    changed = (loss.memory_student != before).any(dim=1).nonzero().flatten()
    assert changed.tolist() == [2, 7]
