"""Models, data, training and measuring helpers of
``benchmarks/pruning_vs_torch_pruning.py``.

``benchmarks/`` is not a package: the script imports this module as
``from _pruning_bench import ...`` (its folder is first on ``sys.path``).
Nothing here imports Torch-Pruning; the functions that drive it take the
module as an argument, so that it stays a benchmark-only dependency.
"""
import argparse
import contextlib
import copy
import gc
import math
import os.path as osp
import statistics
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: Per-channel statistics of the Fashion-MNIST training set (0-255 scale),
#: as in ``configs/_base_/datasets/fashion_mnist_bs64.py``.
MEAN, STD = 72.94, 90.02
INPUT_SHAPE = (1, 1, 28, 28)
NUM_CLASSES = 10

# ----------------------------------------------------------------- models


class _Head(nn.Module):
    """``head.fc``: the classifier, named as in mmpretrain's
    ``LinearClsHead`` so that the state dict keys match an
    ``ImageClassifier`` checkpoint of the quickstart config."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_channels, NUM_CLASSES)


class ResNet18W16(nn.Module):
    """The quickstart model (``configs/vanilla/resnet18-w16_fashion-mnist.py``)
    as a plain module: mmpretrain's ``ResNet_CIFAR`` (depth 18, 1 input
    channel, stem and base width 16, 3x3 stem without max-pool), global
    average pooling and a linear classifier ``head.fc``."""

    classifier = 'head.fc'

    def __init__(self) -> None:
        super().__init__()
        from mmpretrain.models.backbones import ResNet_CIFAR
        self.backbone = ResNet_CIFAR(
            depth=18,
            in_channels=1,
            stem_channels=16,
            base_channels=16,
            num_stages=4,
            out_indices=(3, ),
            style='pytorch')
        self.head = _Head(128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.backbone(x)[-1]
        return self.head.fc(feat.mean((2, 3)))


#: torchvision's inverted residual setting (expansion t, channels c,
#: repeats n, stride s of the first block).
_MBV2_SETTING = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
                 [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]


def mobilenet_v2_fmnist(width_mult: float = 0.5) -> nn.Module:
    """torchvision's MobileNetV2 for 28x28 grey images: width multiplier
    ``width_mult`` (0.5: 7.5M MACs, 0.7M parameters, most of them in the
    last 1x1 conv to 1280 channels), 10 classes, and the first conv takes
    one channel with stride 1 instead of 2, so the feature maps go
    28 -> 14 -> 7 -> 4 -> 2 over the stages (total stride 16) instead of
    collapsing to 1x1. Its classifier is ``classifier.1`` (after the
    dropout)."""
    from torchvision.models import mobilenet_v2
    model = mobilenet_v2(
        width_mult=width_mult,
        num_classes=NUM_CLASSES,
        inverted_residual_setting=[list(s) for s in _MBV2_SETTING])
    stem = model.features[0][0]
    model.features[0][0] = nn.Conv2d(
        1, stem.out_channels, 3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.features[0][0].weight, mode='fan_out')
    model.classifier_name = 'classifier.1'
    return model


MODEL_NAMES = ('resnet18', 'mobilenetv2')


def add_model_and_target_options(parser: argparse.ArgumentParser) -> None:
    """``--models`` and ``--targets`` (FLOPs reduction factors k: pruned to
    1/k), as the pruning benchmarks take them."""
    parser.add_argument('--models', nargs='+', default=list(MODEL_NAMES),
                        choices=MODEL_NAMES)
    parser.add_argument('--targets', nargs='+', type=float,
                        default=[2, 3, 5, 8],
                        help='FLOPs reductions k (pruned to 1/k)')


def build_model(name: str) -> Tuple[nn.Module, str]:
    """The model ``name`` (see :data:`MODEL_NAMES`) and the name of its
    classifier layer (never pruned)."""
    if name == 'resnet18':
        return ResNet18W16(), ResNet18W16.classifier
    if name == 'mobilenetv2':
        model = mobilenet_v2_fmnist()
        return model, model.classifier_name
    raise ValueError(f'unknown model {name!r}; known: {list(MODEL_NAMES)}')


def classifier_of(model: nn.Module, name: str) -> nn.Module:
    return model.get_submodule(name)


# ------------------------------------------------------------------- data


def resolve_root(data_root: str) -> str:
    """A relative ``data_root`` is taken from the repository root."""
    return data_root if osp.isabs(data_root) else osp.join(ROOT, data_root)


def load_split(data_root: str, split: str,
               per_class: Optional[int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST images (normalised float ``(N, 1, 28, 28)``) and labels
    of ``split`` (``'train'`` or ``'test'``).

    Args:
        data_root: Folder of the IDX files (the shipped subset or the full
            set of Debian's ``dataset-fashion-mnist``).
        split: ``'train'`` or ``'test'``.
        per_class: Keep the first this many images of every class (in file
            order, which is random), or all when None/0.
    """
    from mmrazor.datasets import read_idx
    prefix = 'train' if split == 'train' else 't10k'
    root = resolve_root(data_root)

    def find(stem: str) -> str:
        for name in (stem, stem + '.gz'):
            if osp.isfile(osp.join(root, name)):
                return osp.join(root, name)
        raise FileNotFoundError(f'{stem}(.gz) not found in {root!r}')

    images = read_idx(find(f'{prefix}-images-idx3-ubyte'))
    labels = read_idx(find(f'{prefix}-labels-idx1-ubyte')).astype(np.int64)
    if per_class:
        keep = np.concatenate([
            np.flatnonzero(labels == c)[:per_class]
            for c in range(NUM_CLASSES)
        ])
        keep.sort()
        images, labels = images[keep], labels[keep]
    x = torch.from_numpy(images.astype(np.float32)).unsqueeze(1)
    return (x - MEAN) / STD, torch.from_numpy(labels)


def batches(x: torch.Tensor,
            y: torch.Tensor,
            batch_size: int,
            generator: Optional[torch.Generator] = None,
            augment: bool = False):
    """Yield ``(images, labels)`` mini-batches; shuffled and randomly
    flipped left-right (the quickstart's augmentation) when a generator is
    given and ``augment`` is set."""
    n = len(y)
    order = torch.randperm(n, generator=generator) if generator is not None \
        else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        xb, yb = x[idx], y[idx]
        if augment:
            flip = torch.rand(len(idx), generator=generator) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
        yield xb, yb


def calibration_batches(x: torch.Tensor, y: torch.Tensor, count: int,
                        batch_size: int,
                        seed: int) -> List[Tuple[torch.Tensor, torch.Tensor]]:
    """``count`` fixed training batches drawn with ``seed`` (the data of
    the gradient-based criteria, the same for every library)."""
    gen = torch.Generator().manual_seed(10_000 + seed)
    out = []
    for xb, yb in batches(x, y, batch_size, gen):
        if len(out) == count:
            break
        out.append((xb, yb))
    return out


# ---------------------------------------------------------- train / eval


def train(model: nn.Module,
          x: torch.Tensor,
          y: torch.Tensor,
          epochs: int,
          lr: float,
          seed: int,
          batch_size: int = 64,
          weight_decay: float = 5e-4,
          warmup_epochs: float = 0.0,
          nesterov: bool = False,
          log: Optional[Callable[[str], None]] = None) -> None:
    """SGD (momentum 0.9) with a per-iteration cosine decay of the learning
    rate to 0 (after a linear warm-up from ``lr / 10`` over
    ``warmup_epochs``), cross-entropy, random left-right flips; the data
    order is drawn with ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=lr,
        momentum=0.9,
        weight_decay=weight_decay,
        nesterov=nesterov)
    per_epoch = math.ceil(len(y) / batch_size)
    total = max(1, epochs * per_epoch)
    warmup = int(warmup_epochs * per_epoch)
    step = 0
    model.train()
    for epoch in range(epochs):
        start, loss_sum = time.perf_counter(), 0.0
        for xb, yb in batches(x, y, batch_size, gen, augment=True):
            if step < warmup:
                factor = 0.1 + 0.9 * step / warmup
            else:
                t = (step - warmup) / max(1, total - warmup)
                factor = 0.5 * (1 + math.cos(math.pi * t))
            for group in optimizer.param_groups:
                group['lr'] = lr * factor
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach())
            step += 1
        if log is not None:
            log(f'epoch {epoch + 1}/{epochs}: loss '
                f'{loss_sum / per_epoch:.4f} '
                f'({time.perf_counter() - start:.1f} s)')
    model.eval()


@torch.no_grad()
def evaluate(model: nn.Module,
             x: torch.Tensor,
             y: torch.Tensor,
             batch_size: int = 500) -> float:
    """Top-1 accuracy (%) in eval mode."""
    model.eval()
    correct = 0
    for xb, yb in batches(x, y, batch_size):
        correct += int((model(xb).argmax(1) == yb).sum())
    return 100.0 * correct / max(1, len(y))


# ---------------------------------------------------------------- costs


def count_macs(model: nn.Module,
               input_shape: Sequence[int] = INPUT_SHAPE) -> int:
    """Multiply-accumulates per sample of the convs and linear layers of
    ``model`` (the FLOPs convention of mmrazor's estimator; BN, activations
    and pooling are not counted), measured with forward hooks, so that it
    applies alike to a model deployed by mmrazor and to one pruned by
    Torch-Pruning."""
    total = [0]

    def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        per_sample = output.numel() // output.shape[0]
        if isinstance(module, nn.Conv2d):
            fan_in = module.in_channels // module.groups * \
                module.kernel_size[0] * module.kernel_size[1]
        else:
            fan_in = module.in_features
        total[0] += per_sample * fan_in

    handles = [
        m.register_forward_hook(hook) for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(*input_shape))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total[0]


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------- pruning


class StepTimer:
    """Times a block on one torch thread, garbage collection off: ``cpu``
    is the process CPU time (robust to other load on the machine), ``wall``
    the elapsed time, both in seconds, summed over the blocks timed."""

    def __init__(self) -> None:
        self.cpu = self.wall = 0.0

    def __enter__(self) -> 'StepTimer':
        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)
        gc.collect()
        gc.disable()
        self._cpu, self._wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cpu += time.process_time() - self._cpu
        self.wall += time.perf_counter() - self._wall
        gc.enable()
        torch.set_num_threads(self._threads)


def cross_entropy_to(labels: torch.Tensor) -> Callable[[torch.Tensor],
                                                        torch.Tensor]:
    return lambda logits: F.cross_entropy(logits, labels)


def prune_ours(model: nn.Module, importance: str, classifier: str,
               flops: float, calib: Sequence[Tuple[torch.Tensor,
                                                   torch.Tensor]],
               probe: torch.Tensor, round_to: int = 1,
               min_ratio: float = 0.0,
               repeats: int = 1,
               **pruner_kwargs: Any) -> Dict[str, Any]:
    """Prune ``model`` in place with mmrazor's ``ImportancePruner`` down to
    ``flops`` of its FLOPs and deploy it (``pruner_kwargs`` go to the
    pruner, e.g. ``cost_normalization``).

    The model is analysed (``prepare_from_supernet``: ``setup``), a
    gradient-based criterion sees the calibration batches (``accumulate``,
    model in eval mode: ``calib``, not timed on one thread), then the
    pruning step is timed (``step``): ``prune_to_target`` plus
    ``deploy_subnet``. ``setup`` and ``step`` are CPU seconds on one torch
    thread (:class:`StepTimer`); the step runs ``repeats`` times, each on
    a fresh copy of the analysed model and its pruner, and ``step`` is the
    median (one measurement of a few tens of ms varies by tens of per
    cent). The logits of ``probe`` from the masked model (after
    ``prune_to_target``) and from the deployed one give ``max_diff``.

    Returns:
        dict: ``step``, ``step_wall``, ``setup``, ``calib`` seconds,
        ``max_diff`` and ``report`` (of ``prune_to_target``).
    """
    from mmrazor.models.pruners import ImportancePruner
    model.eval()
    setup, step = StepTimer(), StepTimer()
    with setup:
        pruner = ImportancePruner(
            importance=dict(type=importance) if isinstance(
                importance, str) else dict(importance),
            except_start_keys=[classifier],
            round_to=round_to,
            min_ratio=min_ratio,
            **pruner_kwargs)
        pruner.prepare_from_supernet(model, input_shape=INPUT_SHAPE)
    start = time.perf_counter()
    if calib and hasattr(pruner.importance, 'accumulate'):
        for xb, yb in calib:
            pruner.importance.accumulate(model, xb, cross_entropy_to(yb))
    calib_s = time.perf_counter() - start
    steps = []
    for _ in range(max(1, repeats) - 1):
        spare_model, spare = copy.deepcopy((model, pruner))
        timer = StepTimer()
        with timer:
            spare.prune_to_target(flops=flops)
            spare.deploy_subnet(spare_model)
        steps.append(timer)
    with step:
        report = pruner.prune_to_target(flops=flops)
    with torch.no_grad():
        masked = model(probe)
    with step:
        pruner.deploy_subnet(model)
    with torch.no_grad():
        deployed = model(probe)
    steps.append(step)
    return dict(
        step=statistics.median(t.cpu for t in steps),
        step_wall=statistics.median(t.wall for t in steps),
        setup=setup.cpu,
        calib=calib_s,
        max_diff=float((masked - deployed).abs().max()),
        report=report)


def _tp_pruner(tp: Any, model: nn.Module, importance: Any, classifier: str,
               ratio: float, round_to: int, min_ratio: float) -> Any:
    return tp.pruner.MetaPruner(
        model,
        torch.zeros(*INPUT_SHAPE),
        importance=importance,
        global_pruning=True,
        pruning_ratio=ratio,
        max_pruning_ratio=1.0 - min_ratio,
        ignored_layers=[classifier_of(model, classifier)],
        round_to=round_to if round_to > 1 else None)


def _copy_with_grads(model: nn.Module) -> nn.Module:
    """A deep copy that also holds the parameters' ``.grad``."""
    new = copy.deepcopy(model)
    for p_new, p_old in zip(new.parameters(), model.parameters()):
        p_new.grad = None if p_old.grad is None else p_old.grad.clone()
    return new


def prune_tp(tp: Any,
             model: nn.Module,
             method: str,
             classifier: str,
             flops: float,
             calib: Sequence[Tuple[torch.Tensor, torch.Tensor]],
             round_to: int = 1,
             min_ratio: float = 0.0,
             tol: float = 2e-4,
             log: Optional[Callable[[str], None]] = None,
             repeats: int = 1,
             ratio: Optional[float] = None
             ) -> Tuple[nn.Module, Dict[str, Any]]:
    """Prune a copy of ``model`` with Torch-Pruning's global pruning to at
    most ``flops`` of its FLOPs (:func:`count_macs`).

    ``method`` is ``'magnitude'`` (``MagnitudeImportance``, its defaults:
    group L2 norm, mean-normalised) or ``'taylor'`` (``TaylorImportance``,
    its defaults; the gradients of the calibration batches are summed in
    the parameters' ``.grad`` first, model in eval mode, timed as
    ``calib``). The classifier is an ignored layer; ``round_to`` and
    ``min_ratio`` (as ``max_pruning_ratio = 1 - min_ratio``) are the
    guard-rails of mmrazor's pruner. Torch-Pruning is given a channel
    ``pruning_ratio``, not a FLOPs target, so the smallest ratio that
    brings the FLOPs to at most ``flops`` is found by bisection (to
    ``tol``) on copies; the
    pruner's construction (dependency graph) is timed as ``setup`` and its
    ``step()`` as ``step``, both at the ratio found, on a fresh copy, in
    CPU seconds on one torch thread (:class:`StepTimer`); medians of
    ``repeats`` such copies. A ``ratio`` found before (the ``ratio`` of
    an earlier result) skips the bisection.

    Returns:
        tuple: The pruned copy and ``dict(step, step_wall, setup, calib,
        ratio, trials, flops_ratio)``.
    """
    model.eval()
    base = count_macs(model)
    t0 = time.perf_counter()
    if method == 'taylor':
        model.zero_grad(set_to_none=True)
        with torch.enable_grad():
            for xb, yb in calib:
                F.cross_entropy(model(xb), yb).backward()
    calib_s = time.perf_counter() - t0

    def importance() -> Any:
        if method == 'magnitude':
            return tp.importance.MagnitudeImportance()
        if method == 'taylor':
            return tp.importance.TaylorImportance()
        raise ValueError(f'unknown Torch-Pruning method {method!r}')

    def attempt(ratio: float, timed: bool = False
                ) -> Tuple[nn.Module, float, StepTimer, StepTimer]:
        pruned = _copy_with_grads(model)
        setup, step = StepTimer(), StepTimer()
        with (setup if timed else contextlib.nullcontext()):
            pruner = _tp_pruner(tp, pruned, importance(), classifier, ratio,
                                round_to, min_ratio)
        with (step if timed else contextlib.nullcontext()):
            pruner.step()
        return pruned, count_macs(pruned) / base, setup, step

    lo, hi, trials = 0.0, 1.0, 0
    best: Optional[float] = ratio  # the smallest ratio seen to fit
    while ratio is None and hi - lo > tol:
        mid = (lo + hi) / 2
        trials += 1
        try:
            _, reached, _, _ = attempt(mid)
        except Exception as err:  # e.g. a ratio that empties a layer
            if log is not None:
                log(f'Torch-Pruning failed at pruning_ratio={mid:.4f}: '
                    f'{type(err).__name__}: {err}')
            hi = mid  # too much pruning
            continue
        if reached <= flops:
            hi = best = mid
        else:
            lo = mid
    if best is None:
        raise RuntimeError(f'Torch-Pruning {method}: no pruning_ratio '
                           f'reaches {flops:.4f} of the FLOPs')
    timed = [attempt(best, timed=True) for _ in range(max(1, repeats))]
    pruned, reached = timed[-1][:2]
    pruned.zero_grad(set_to_none=True)
    model.zero_grad(set_to_none=True)
    return pruned, dict(
        step=statistics.median(t[3].cpu for t in timed),
        step_wall=statistics.median(t[3].wall for t in timed),
        setup=statistics.median(t[2].cpu for t in timed), calib=calib_s,
        ratio=best, trials=trials, flops_ratio=reached)


# ------------------------------------------------------------- latency


def onnx_session(model: nn.Module, x: torch.Tensor, path: str) -> Any:
    """An onnxruntime session (one thread, CPU) of ``model`` exported to
    ``path`` at the input ``x`` (opset 17, with the TorchScript exporter
    where torch still has it: the dynamo one takes seconds per model)."""
    import onnxruntime as ort
    model.eval()
    try:  # the TorchScript exporter: quick and quiet
        torch.onnx.export(model, (x, ), path, opset_version=17, dynamo=False)
    except TypeError:  # a torch without the ``dynamo`` switch
        torch.onnx.export(model, (x, ), path, opset_version=17)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(
        path, options, providers=['CPUExecutionProvider'])


def _steady_ms(run: Callable[[], Any], settle: int) -> float:
    """CPU ms of one call of ``run`` right after ``settle`` untimed calls
    (the model's weights warm in the caches, as in a serving loop)."""
    for _ in range(settle):
        run()
    start = time.thread_time()
    run()
    return (time.thread_time() - start) * 1e3


def latency_ms(sessions: Dict[str, Any], x: torch.Tensor, rounds: int,
               settle: int = 3) -> Dict[str, float]:
    """Median CPU ms of a forward of every session, the sessions taking
    turns round by round (so that machine noise hits them alike)."""
    feed = x.numpy()
    runs = {
        name: (lambda s=s: s.run(None, {s.get_inputs()[0].name: feed}))
        for name, s in sessions.items()
    }
    times: Dict[str, List[float]] = {name: [] for name in runs}
    gc.collect()
    for i in range(rounds):
        order = list(runs) if i % 2 == 0 else list(reversed(runs))
        for name in order:
            times[name].append(_steady_ms(runs[name], settle))
    return {name: statistics.median(t) for name, t in times.items()}
