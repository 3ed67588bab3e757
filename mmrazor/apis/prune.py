"""One-shot pruning of a trained model from a config: the work of
``tools/prune.py`` (score, prune to a target, write the subnet and the
fine-tuning config)."""
import copy
import json
import os.path as osp
from typing import Any, Dict, Iterable, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.utils import ProgressBar
from torch import nn

from mmrazor.utils import atomic_write_bytes

#: Keys of a prune target.
TARGET_KEYS = ('flops', 'params', 'latency')


def parse_target(text: str) -> Dict[str, float]:
    """``'flops=0.5,params=0.6'`` -> ``{'flops': 0.5, 'params': 0.6}``.

    A FLOPs *reduction* may be given as ``flops=2x`` (half the FLOPs).

    Args:
        text (str): Comma-separated ``key=value`` pairs.

    Returns:
        dict[str, float]: Kept fractions per cost.

    Raises:
        ValueError: A key outside :data:`TARGET_KEYS` or a value that is no
            number (the message names it).
    """
    target: Dict[str, float] = {}
    for item in filter(None, (t.strip() for t in text.split(','))):
        key, sep, value = item.partition('=')
        key = key.strip()
        if not sep or key not in TARGET_KEYS:
            raise ValueError(f'--target: {item!r} is not key=value with a '
                             f'key of {list(TARGET_KEYS)}')
        value = value.strip()
        try:
            number = 1 / float(value[:-1]) if value.endswith('x') else \
                float(value)
        except (ValueError, ZeroDivisionError):
            raise ValueError(f'--target: {key}={value!r} is not a fraction '
                             'in (0, 1] nor a reduction like 2x') from None
        target[key] = number
    if not target:
        raise ValueError(f'--target {text!r} names no cost')
    return target


def check_target(target: Dict[str, Any], where: str) -> Dict[str, float]:
    """Validate a prune target given as a mapping (a config's
    ``prune_target``).

    Args:
        target (dict): E.g. ``dict(flops=0.5)``.
        where (str): Where it comes from, for the message.

    Returns:
        dict[str, float]: The target.

    Raises:
        ValueError: An unknown key or a value outside (0, 1], named.
    """
    checked = {}
    for key, value in dict(target).items():
        if key not in TARGET_KEYS:
            raise ValueError(f'{where}: key {key!r} is not one of '
                             f'{list(TARGET_KEYS)}')
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not 0 < value <= 1:
            raise ValueError(f'{where}: {key}={value!r} is not a kept '
                             'fraction in (0, 1]')
        checked[key] = float(value)
    return checked


#: Keys of a pruning config's ``calibration``: training batches that a
#: data-driven criterion reads, and batches that recompute the BatchNorm
#: statistics of the pruned model.
CALIBRATION_KEYS = ('batches', 'bn_batches')


def check_calibration(calibration: Dict[str, Any],
                      where: str) -> Dict[str, int]:
    """Validate a pruning config's ``calibration`` (see
    :data:`CALIBRATION_KEYS`).

    Args:
        calibration (dict): E.g. ``dict(batches=16, bn_batches=8)``.
        where (str): Where it comes from, for the message.

    Returns:
        dict[str, int]: The settings given.

    Raises:
        ValueError: An unknown key or a value that is not a count >= 0,
            named.
    """
    checked = {}
    for key, value in dict(calibration).items():
        if key not in CALIBRATION_KEYS:
            raise ValueError(f'{where}: key {key!r} is not one of '
                             f'{list(CALIBRATION_KEYS)}')
        if isinstance(value, bool) or not isinstance(value, int) or \
                value < 0:
            raise ValueError(f'{where}: {key}={value!r} is not a number '
                             'of batches (an int >= 0)')
        checked[key] = value
    return checked


def _loss_forward(model: nn.Module, batch: Any) -> Any:
    """The loss dict of an mmengine model for a dataloader batch."""
    data = model.data_preprocessor(batch, True)
    if isinstance(data, dict):
        return model(**data, mode='loss')
    return model(*data, mode='loss')


def calibrate(pruner: nn.Module, model: nn.Module, batches: Iterable[Any],
              num_batches: int) -> int:
    """Gather the statistics of a data-driven criterion (Taylor, Group
    Fisher): forward and backward passes of the training loss on
    ``num_batches`` batches, the model in train mode (weights untouched).

    Args:
        pruner (ImportancePruner): A prepared pruner.
        model (nn.Module): The mmengine model it analysed.
        batches (Iterable): Dataloader batches.
        num_batches (int): How many to use.

    Returns:
        int: Batches used.
    """
    criterion = pruner.importance
    was_training = model.training
    model.train()
    bar = ProgressBar(num_batches)
    used = 0
    try:
        for batch in batches:
            if used >= num_batches:
                break
            criterion.accumulate(model, batch, forward_fn=_loss_forward)
            used += 1
            bar.update()
    finally:
        model.train(was_training)
    print()
    return used


def data_driven(pruner: nn.Module) -> bool:
    """Whether the pruner's criterion learns from data."""
    return hasattr(getattr(pruner, 'importance', None), 'accumulate')


def kept_table(pruner: nn.Module) -> str:
    """A text table of every prunable group: units kept of all."""
    rows = [('group', 'kept', 'of', 'ratio')]
    for name, unit in pruner.units.items():
        kept = int(np.count_nonzero(unit.current_mask))
        rows.append((name, str(kept), str(unit.num_units),
                     f'{kept / unit.num_units:.2f}'))
    width = [max(len(r[i]) for r in rows) for i in range(4)]
    return '\n'.join('  '.join(c.ljust(w) for c, w in zip(r, width))
                     for r in rows)


def plot_kept(pruner: nn.Module, path: str, title: str) -> Optional[str]:
    """Bar chart of the kept fraction of every group (PNG).

    Args:
        pruner (ImportancePruner): After pruning.
        path (str): Where to write it.
        title (str): Its title.

    Returns:
        str | None: The path, or None without matplotlib.
    """
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    names = list(pruner.units)
    ratios = [
        np.count_nonzero(u.current_mask) / u.num_units
        for u in pruner.units.values()
    ]
    fig, ax = plt.subplots(figsize=(max(6, 0.3 * len(names)), 4))
    ax.bar(range(len(names)), ratios)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=90, fontsize=6)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel('kept fraction of units')
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def finetune_config(cfg: Config, subnet_path: str, checkpoint: str,
                    input_shape: Sequence[int],
                    pruner_cfg: Dict[str, Any]) -> Config:
    """The config that fine-tunes the pruned model with
    ``tools/train.py``: the original config whose ``model`` is a
    :func:`~mmrazor.models.algorithms.pruning.pruned_model` (masked, so
    that its checkpoints deploy with ``tools/deploy_subnet.py``), starting
    from ``checkpoint`` (``load_from``).

    Args:
        cfg (Config): The original (pruning) config.
        subnet_path (str): The subnet file.
        checkpoint (str): Weights of the unpruned shapes: the unpruned
            model's, or those of the masked model with its BatchNorm
            statistics recomputed (``pruned.pth`` of ``tools/prune.py``).
        input_shape (Sequence[int]): Dummy input of the analysis.
        pruner_cfg (dict): The pruner config.

    Returns:
        Config: The fine-tuning config.
    """
    new = copy.deepcopy(cfg)
    new.model = dict(
        type='mmrazor.PrunedModel',
        architecture=cfg.model,
        channel_cfg=osp.abspath(subnet_path),
        pruner=pruner_cfg,
        input_shape=list(input_shape))
    new.load_from = osp.abspath(checkpoint)
    new.resume = False
    finetune = cfg.get('finetune', None)
    if finetune:
        for key, value in finetune.items():
            new[key] = value
    for key in ('prune_target', 'calibration', 'finetune'):
        new.pop(key, None)
    return new


def pruned_architecture(finetune_config: str,
                        checkpoint: str) -> Dict[str, Any]:
    """The physically pruned model of a pruning run, as a config: the
    ``PrunedModel`` of the fine-tuning config ``tools/prune.py`` wrote,
    loaded from ``checkpoint`` (the fine-tuned masked model's, or the
    unpruned one's: both have the unpruned shapes) and then sliced
    (``deploy=True``). It is what ``tools/ptq.py --pruned`` quantizes.

    Args:
        finetune_config (str): ``finetune.py`` of a ``tools/prune.py``
            work dir.
        checkpoint (str): Its weights (``{'state_dict': ...}`` or a plain
            state dict, of the unpruned shapes).

    Returns:
        dict: A ``mmrazor.PrunedModel`` config.

    Raises:
        ValueError: The config's ``model`` is not a ``PrunedModel``.
    """
    model = Config.fromfile(finetune_config).model
    if not str(model.get('type')).endswith('PrunedModel'):
        raise ValueError(
            f'{finetune_config}: model.type={model.get("type")!r}, not '
            "'mmrazor.PrunedModel': pass the finetune.py that "
            'tools/prune.py wrote')
    model['checkpoint'] = osp.abspath(checkpoint)
    model['deploy'] = True
    return model.to_dict()


def write_json_atomic(data: Dict[str, Any], path: str) -> None:
    """Write a JSON report atomically (``mmrazor.utils.atomic_write_bytes``).
    """
    atomic_write_bytes(json.dumps(data, indent=1).encode(), path)


def to_builtin(value: Any) -> Any:
    """numpy / torch scalars and containers -> plain Python for JSON."""
    if isinstance(value, dict):
        return {str(k): to_builtin(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_builtin(v) for v in value]
    if isinstance(value, (np.generic, )):
        return value.item()
    if isinstance(value, torch.Tensor):
        return value.tolist()
    return value
