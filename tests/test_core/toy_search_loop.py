"""A tiny supernet on tiny data, for SearchLoop tests: scores that can be
computed by hand.

Four features go through BatchNorm, are scaled per feature by the choices
of ``d1``..``d4`` and classified into three classes by the head ``d0``
chooses. The training data can carry a random "transform" (noise from the
global generator), so that BatchNorm re-calibration depends on seeding.
"""
import os.path as osp
from typing import Dict, List, Optional

import torch
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmpretrain.structures import DataSample
from torch import nn
from torch.utils.data import Dataset

from toy_search_space import CHOICES, ToyMutator

NUM_FEATURES = 4
NUM_CLASSES = 3


class Interrupted(Exception):
    """Raised by :class:`ToySupernet` to simulate a crash mid-search."""


class ToyData(Dataset):
    """``n`` samples of four features and a label, drawn with ``seed``.

    Args:
        n (int): Samples.
        seed (int): Seed of the data.
        noise (float): Scale of Gaussian noise added on every read, drawn
            from torch's global generator (a random data transform).
    """

    def __init__(self, n: int, seed: int, noise: float = 0.0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, NUM_FEATURES, generator=g) * 2 + 3
        self.y = torch.randint(0, NUM_CLASSES, (n, ), generator=g)
        self.noise = noise

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict:
        x = self.x[i]
        if self.noise:
            x = x + self.noise * torch.randn(NUM_FEATURES)
        return dict(
            inputs=x, data_samples=DataSample().set_gt_label(int(self.y[i])))


def feature_scales(subnet: Dict[str, int]) -> torch.Tensor:
    """Per-feature scale a subnet applies after BatchNorm."""
    return torch.tensor(
        [1.0 + subnet[f'd{j + 1}'] for j in range(NUM_FEATURES)])


class ToySupernet(BaseModel):
    """BatchNorm -> per-feature scales (``d1``..``d4``) -> head ``d0``.

    Args:
        seed (int): Seed of the weights.
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.mutator = ToyMutator()
        self.bn = nn.BatchNorm1d(NUM_FEATURES)
        with torch.no_grad():
            self.bn.weight.copy_(torch.rand(NUM_FEATURES, generator=g) + 0.5)
            self.bn.bias.copy_(torch.rand(NUM_FEATURES, generator=g) - 0.5)
        self.heads = nn.ModuleList(
            nn.Linear(NUM_FEATURES, NUM_CLASSES) for _ in CHOICES)
        with torch.no_grad():
            for p in self.heads.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
        self.val_batches = 0
        self.fail_at_batch: Optional[int] = None

    def get_subnet_flops(self) -> float:
        return 10.0 * sum(self.mutator.current.values())

    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        x = torch.stack(list(inputs))
        current = self.mutator.current
        logits = self.heads[current['d0']](
            self.bn(x) * feature_scales(current))
        if mode == 'tensor':
            return logits
        if mode == 'predict':
            for sample, logit in zip(data_samples, logits):
                sample.set_pred_score(logit.softmax(0))
            return data_samples
        raise ValueError(f'mode {mode!r} is not supported')

    def val_step(self, data) -> list:
        self.val_batches += 1
        if self.val_batches == self.fail_at_batch:
            raise Interrupted(f'interrupted at validation batch '
                              f'{self.val_batches}')
        return super().val_step(data)


class MeanConfidence(BaseMetric):
    """Mean top probability: a continuous metric (``toy/confidence``)."""

    default_prefix = 'toy'

    def process(self, data_batch, data_samples) -> None:
        for sample in data_samples:
            self.results.append(float(sample['pred_score'].max()))

    def compute_metrics(self, results: List[float]) -> Dict[str, float]:
        return {'confidence': sum(results) / len(results)}


def by_hand(model: ToySupernet, subnet: Dict[str, int], val: ToyData,
            calib_x: torch.Tensor) -> Dict[str, float]:
    """Top-1 accuracy (%) and mean confidence of ``subnet`` on ``val``,
    after BatchNorm statistics taken from ``calib_x`` in one batch, computed
    with plain tensor operations.

    Args:
        model (ToySupernet): Gives the weights.
        subnet (dict): The candidate.
        val (ToyData): Validation data (no noise).
        calib_x (Tensor): Every calibration sample, ``(n, 4)``.

    Returns:
        dict: ``top1`` and ``confidence``.
    """
    bn = model.bn
    mean, var = calib_x.mean(0), calib_x.var(0, unbiased=True)
    x = (val.x - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias
    head = model.heads[subnet['d0']]
    logits = (x * feature_scales(subnet)) @ head.weight.T + head.bias
    probs = logits.softmax(1)
    correct = int((probs.argmax(1) == val.y).sum())
    return dict(top1=100.0 * correct / len(val),
                confidence=float(probs.max(1).values.mean()))


def toy_runner(work_dir: str, model: Optional[ToySupernet] = None) -> Runner:
    """A runner around a :class:`ToySupernet` in the mmrazor scope."""
    return Runner(
        model=model or ToySupernet(),
        work_dir=osp.abspath(work_dir),
        default_scope='mmrazor',
        randomness=dict(seed=0),
        default_hooks=dict(logger=None, checkpoint=None),
        log_level='WARNING')


def toy_loop_cfg(searcher: dict,
                 calib_noise: float = 0.0,
                 calib_batch_size: int = 24,
                 **kwargs) -> dict:
    """A SearchLoop config over the toy data: 20 validation samples in
    batches of 7 (the config's sharding sampler is replaced), 24
    calibration samples."""
    cfg = dict(
        type='SearchLoop',
        dataloader=dict(
            dataset=ToyData(20, seed=1),
            batch_size=7,
            sampler=dict(type='DefaultSampler', shuffle=False)),
        evaluator=[
            dict(type='mmpretrain.Accuracy', topk=(1, )),
            dict(type=MeanConfidence)
        ],
        searcher=searcher,
        calib_dataloader=dict(
            dataset=ToyData(24, seed=2, noise=calib_noise),
            batch_size=calib_batch_size,
            sampler=dict(type='DefaultSampler', shuffle=True)))
    cfg.update(kwargs)
    return cfg
