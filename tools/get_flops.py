"""FLOPs (multiply-accumulates), parameters and uncounted ops of a model.

Examples:
    python tools/get_flops.py CONFIG
    python tools/get_flops.py CONFIG --subnet subnet.yaml --shape 224 224
    python tools/get_flops.py CONFIG --module backbone --max-depth 3
    python tools/get_flops.py CONFIG --convention mmcv

"FLOPs" follows the OpenMMLab convention: one multiply-add counts once, so
FLOPs and MACs are the same number. Normalisation, activations, element-wise
ops, pooling and softmax are not counted; the ops that ran but were not
counted are listed at the end. ``--convention mmcv`` also prints the FLOPs
of the mmcv convention (MMRazor 1.x), which counts those layers too.
"""
import argparse
import sys
from typing import Any, Dict, List, Optional, Tuple

from mmengine.config import Config, DictAction
from torch import nn


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Count FLOPs/MACs and parameters of a model')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--subnet', help='subnet YAML to fix in the (super)net first')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        default=[224, 224],
        help='input image size: H W (or one number for a square)')
    parser.add_argument(
        '--channels', type=int, default=3, help='input channels')
    parser.add_argument(
        '--module', help='report only this sub-module (e.g. backbone)')
    parser.add_argument(
        '--max-depth',
        type=int,
        default=2,
        help='depth of the per-module table below the reported module')
    parser.add_argument(
        '--convention',
        choices=['macs', 'mmcv'],
        default='macs',
        help='FLOPs convention: macs (multiply-accumulates, default) or '
        'mmcv (MMRazor 1.x / mmcv get_model_complexity_info: also bias '
        'adds, norms, activations, pooling, upsampling; per image)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value')
    return parser.parse_args(argv)


def input_shape_from(shape: List[int], channels: int) -> Tuple[int, ...]:
    """``(1, C, H, W)`` from ``--shape``.

    Args:
        shape (list[int]): ``[H, W]`` or ``[S]``.
        channels (int): Input channels.

    Returns:
        tuple[int]: The batch-1 input shape.
    """
    if len(shape) == 1:
        h = w = shape[0]
    elif len(shape) == 2:
        h, w = shape
    else:
        raise ValueError(f'--shape takes H W or one size, got {shape}')
    return (1, channels, h, w)


def build_model(cfg: Config) -> nn.Module:
    """Build ``cfg.model`` (or ``cfg.algorithm``) with mmrazor's registry.

    Args:
        cfg (Config): The config.

    Returns:
        nn.Module: The model; for an algorithm holding an
        ``architecture``, that architecture (the deployable network).
    """
    from mmrazor.registry import MODELS
    model_cfg = cfg.get('algorithm', None) or cfg.get('model', None)
    if model_cfg is None:
        raise KeyError('the config has neither `model` nor `algorithm`')
    model = MODELS.build(model_cfg)
    architecture = getattr(model, 'architecture', None)
    if isinstance(architecture, nn.Module):
        model = architecture
    return model


def human(value: float, unit: str = '') -> str:
    """``3.35M``-style formatting."""
    for suffix, scale in (('T', 1e12), ('G', 1e9), ('M', 1e6), ('K', 1e3)):
        if abs(value) >= scale:
            return f'{value / scale:.3f}{suffix}{unit}'
    return f'{value:.0f}{unit}'


def module_table(by_module: Dict[str, Dict[str, Any]], model: nn.Module,
                 root: str, max_depth: int) -> str:
    """A text table of FLOPs and parameters per module.

    Args:
        by_module (dict): ``estimate(..., by_module=True)['by_module']``.
        model (nn.Module): The model (for module types).
        root (str): The reported module ('' for the whole model).
        max_depth (int): Levels below ``root`` to show.

    Returns:
        str: The table.
    """
    types = {name: type(m).__name__ for name, m in model.named_modules()}
    total = by_module.get(root, {}).get('flops', 0) or 1
    base_depth = len(root.split('.')) if root else 0
    rows = [('module', 'type', 'FLOPs', '%', 'params')]
    for name in sorted(by_module, key=_tree_order):
        if root and not (name == root or name.startswith(root + '.')):
            continue
        depth = (len(name.split('.')) if name else 0) - base_depth
        if depth > max_depth:
            continue
        entry = by_module[name]
        if not entry['flops'] and not entry['params'] and name != root:
            continue
        short = name if name == root else name.split('.')[-1]
        label = '  ' * depth + (short or '(model)')
        rows.append((label, types.get(name, '?'), human(entry['flops']),
                     f'{100.0 * entry["flops"] / total:.1f}',
                     human(entry['params'])))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for i, row in enumerate(rows):
        lines.append('  '.join(
            cell.ljust(widths[j]) if j < 2 else cell.rjust(widths[j])
            for j, cell in enumerate(row)))
        if i == 0:
            lines.append('  '.join('-' * w for w in widths))
    return '\n'.join(lines)


def _tree_order(name: str) -> List[Any]:
    # numeric parts sort as numbers: layers.2 before layers.10
    return [(0, int(p)) if p.isdigit() else (1, p)
            for p in name.split('.')] if name else []


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    from mmrazor.models.task_modules import ResourceEstimator
    from mmrazor.utils import register_all_modules
    register_all_modules()
    from mmrazor.apis.config_compat import read_config
    # A subnet file replaces the one the config names (0.x `mutable_cfg` /
    # `channel_cfg`, 1.x `fix_subnet`), which may be a URL never fetched.
    cfg, loaded_at_build = read_config(args.config, args.cfg_options,
                                       args.subnet)
    model = build_model(cfg)
    if args.subnet is not None and not loaded_at_build:
        from mmrazor.structures import load_fix_subnet
        load_fix_subnet(model, args.subnet)
    shape = input_shape_from(args.shape, args.channels)
    estimator = ResourceEstimator(input_shape=shape)
    result = estimator.estimate(model, module=args.module, by_module=True)
    root = args.module or ''
    print(module_table(result['by_module'], model, root, args.max_depth))
    print()
    what = f'{args.module} of ' if args.module else ''
    print(f'Input shape: {shape}  ({what}{type(model).__name__})')
    print(f'FLOPs: {human(result["flops"])}  (OpenMMLab convention: '
          'multiply-accumulates)')
    print(f'MACs: {human(result["macs"])}')
    if args.convention == 'mmcv':
        mmcv = estimator.estimate(
            model, module=args.module, flops_params_cfg=dict(units=None))
        result['flops_mmcv'] = mmcv['flops']
        print(f'FLOPs (mmcv convention, per image: MACs + bias adds, norms, '
              f'activations, pooling, upsampling): {human(mmcv["flops"])}')
    print(f'Params: {human(result["params"])}')
    uncounted = ', '.join(f'{k} x{v}'
                          for k, v in result['uncounted'].items()) or 'none'
    print(f'Uncounted ops (ran, not counted): {uncounted}')
    return result


if __name__ == '__main__':
    main(sys.argv[1:])
