"""Greedy-searched widths vs uniformly thinned widths at the same FLOPs.

Loads a trained AutoSlim supernet, the channel configurations the greedy
search wrote (``greedy_results.json``), and compares each with the uniform
width ratio of the largest FLOPs not above it, and with the uniform accuracy
linearly interpolated to exactly the greedy subnet's FLOPs. Every subnet is scored on the
whole validation split after BatchNorm re-calibration on the same training
batches. Prints a markdown table.

Example:
    python benchmarks/autoslim_vs_uniform.py \
        configs/pruning/autoslim/autoslim_resnet18-w16_search_fashion-mnist.py \
        work_dirs/autoslim_sn/epoch_6.pth work_dirs/autoslim_search
"""
import argparse
import json
import os.path as osp

import torch
from mmengine.config import Config

from mmrazor.apis import build_runner, search_loop_cfg
from mmrazor.core import recalibrate_bn
from mmrazor.core.searchers import seed_everything
from mmrazor.registry import LOOPS
from mmrazor.utils import register_all_modules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='the greedy search config')
    parser.add_argument('checkpoint', help='trained AutoSlim supernet')
    parser.add_argument('search_dir', help='work dir of the greedy search')
    parser.add_argument('--calib-batches', type=int, default=8)
    args = parser.parse_args()

    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(args.config)
    cfg.work_dir = osp.join(args.search_dir, 'vs_uniform')
    cfg.launcher = 'none'
    cfg.log_level = 'WARNING'  # stdout is the table
    runner = build_runner(cfg)
    runner.load_checkpoint(args.checkpoint)
    # The search loop's scoring, on the whole validation split.
    loop_cfg = search_loop_cfg(cfg)
    loop_cfg['dataloader'] = dict(cfg.val_dataloader)
    loop_cfg['dataloader']['dataset'] = dict(cfg.val_dataloader.dataset)
    loop_cfg['dataloader']['dataset'].pop('indices', None)
    loop_cfg['searcher'] = dict(cfg.searcher, calib_batches=args.calib_batches)
    loop = LOOPS.build(loop_cfg, default_args=dict(runner=runner))
    algo = loop.searcher.algorithm
    calib = loop.searcher.calib_dataloader
    key = cfg.searcher.score_key

    def score(bins, max_bins):
        algo.pruner.set_channel_bins(bins, max_bins)
        seed_everything(0)  # the same augmented calibration batches
        recalibrate_bn(algo, calib, args.calib_batches)
        return loop.evaluate(algo)[key], algo.get_subnet_flops()

    groups = list(algo.pruner.current_subnet())
    uniform = []
    for ratio in algo.pruner.ratios:
        bins = {g: round(ratio * 8) for g in groups}
        acc, flops = score(bins, 8)
        uniform.append((ratio, flops, acc))
    with open(osp.join(args.search_dir, 'greedy_results.json')) as f:
        results = json.load(f)
    max_bins = cfg.searcher.max_channel_bins
    print(f'| target FLOPs | greedy FLOPs | greedy {key} | uniform ratio '
          f'(FLOPs just below) | its FLOPs | its {key} | uniform {key} at '
          'equal FLOPs (interpolated) |')
    print('|---|---|---|---|---|---|---|')
    for r in results:
        acc, flops = score(r['bins'], max_bins)
        below = [u for u in uniform if u[1] <= flops]
        above = [u for u in uniform if u[1] > flops]
        ratio, u_flops, u_acc = max(below, key=lambda u: u[1]) if below \
            else min(uniform, key=lambda u: u[1])
        if below and above:
            hi = min(above, key=lambda u: u[1])
            t = (flops - u_flops) / (hi[1] - u_flops)
            equal = f'{u_acc + t * (hi[2] - u_acc):.2f}'
        else:
            equal = 'n/a'
        print(f'| {r["target"] / 1e6:.1f}M | {flops / 1e6:.2f}M | '
              f'{acc:.2f} | {ratio:.3f} | {u_flops / 1e6:.2f}M | '
              f'{u_acc:.2f} | {equal} |')
    print('\nall uniform widths: ' + ', '.join(
        f'{r:.3f}: {f / 1e6:.2f}M {a:.2f}' for r, f, a in uniform))


if __name__ == '__main__':
    with torch.no_grad():
        main()
