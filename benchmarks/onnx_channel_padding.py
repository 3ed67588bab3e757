"""onnxruntime speed of pruned models with and without channel padding.

A model pruned to any channel count (``round_to=1``) is exported to ONNX
as pruned, and with every group's kept channels padded up to a multiple
of ``--block`` (:mod:`mmrazor.models.pruners.channel_padding`: the added
channels compute zeros, the outputs stay the pruned model's) for each
``--max-growth``. All of them and the unpruned model run in onnxruntime
(one thread, batch ``--batch``, taking turns, median CPU time of
``--rounds`` calls, each after 3 untimed calls); printed per model and
FLOPs target: the FLOPs of the exported model (padded channels count) and
the speed-up over the unpruned model.

Models and pruning: the models of ``benchmarks/pruning_vs_torch_pruning.py``
(ResNet-18 width 16, MobileNetV2 width 0.5, 28x28 inputs), with its
pretrained weights when they are in ``--work-dir`` (random ones
otherwise: the speed does not depend on the values), pruned by
``L1Importance`` to 1/k of the FLOPs (``min_ratio=0.1``).

Example::

    python benchmarks/onnx_channel_padding.py --block 16
"""
import argparse
import copy
import os.path as osp
import sys
import tempfile
from typing import Dict, List, Optional

import torch

from _pruning_bench import (INPUT_SHAPE, add_model_and_target_options,
                            build_model, count_macs, latency_ms,
                            onnx_session)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_and_target_options(parser)
    parser.add_argument('--block', type=int, default=16,
                        help='channel block (16: AVX-512, 8: AVX2)')
    parser.add_argument('--max-growth', type=float, nargs='+',
                        default=[1.25, 1.5, 2.0, 16.0],
                        help='largest padded / kept channel ratio of a '
                        'group, one column each')
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--rounds', type=int, default=15)
    parser.add_argument('--work-dir', default='/tmp/mmrazor_bench_pruning',
                        help='where pruning_vs_torch_pruning.py keeps its '
                        'pretrained weights')
    return parser.parse_args(argv)


def trained(name: str, work_dir: str) -> torch.nn.Module:
    model, _ = build_model(name)
    path = osp.join(work_dir,
                    f'{name}_e6_nall_fashion_mnist_subset.pth')
    if osp.isfile(path):
        model.load_state_dict(torch.load(path, weights_only=True))
    else:
        print(f'{name}: no {path}, random weights')
    return model.eval()


def variants(model: torch.nn.Module, classifier: str, target: float,
             block: int, growths: List[float]
             ) -> Dict[str, torch.nn.Module]:
    """The model pruned to ``target`` of its FLOPs, as pruned and padded
    for every growth, each checked against the pruned one."""
    from mmrazor.models.pruners import ImportancePruner
    from mmrazor.models.pruners.channel_padding import slice_padded
    from mmrazor.models.pruners.utils import slice_model
    model = copy.deepcopy(model)
    pruner = ImportancePruner(importance=dict(type='L1Importance'),
                              except_start_keys=[classifier],
                              min_ratio=0.1)
    pruner.prepare_from_supernet(model, input_shape=INPUT_SHAPE)
    pruner.prune_to_target(flops=target)
    pruner.remove_masks()
    dep, masks = pruner.dependency, pruner._masks
    out = {}
    for growth in growths:
        copy_ = copy.deepcopy(model)
        twin = {id(a): b for a, b in zip(model.modules(), copy_.modules())}
        slice_padded(copy_, dep, masks, block, growth, twin)
        out[f'padded <= {growth:g}x'] = copy_.eval()
    slice_model(model, dep, masks)
    out['as pruned'] = model.eval()
    x = torch.randn(8, *INPUT_SHAPE[1:])
    with torch.no_grad():
        ref = out['as pruned'](x)
        for key, m in out.items():
            diff = float((m(x) - ref).abs().max())
            assert diff < 1e-4, f'{key}: outputs differ by {diff}'
    return out


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)
    import mmrazor.models  # noqa: F401 (registers the criteria)
    from mmengine.logging import MMLogger
    MMLogger.get_instance('onnx_channel_padding', log_level='WARNING')
    x = torch.randn(args.batch, *INPUT_SHAPE[1:])
    columns = ['as pruned'] + [f'padded <= {g:g}x' for g in args.max_growth]
    print(f'block {args.block}, onnxruntime 1 thread, batch {args.batch}, '
          f'{args.rounds} rounds; cells: FLOPs of the exported model / '
          'speed-up over the unpruned model (speed-up x FLOPs reduction of '
          'the pruned model)\n')
    print('| model | target | ' + ' | '.join(columns) + ' |')
    print('|---|---|' + '---|' * len(columns))
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            model = trained(name, args.work_dir)
            _, classifier = build_model(name)
            base = count_macs(model)
            dense = onnx_session(model, x, osp.join(tmp, 'dense.onnx'))
            for k in args.targets:
                models = variants(model, classifier, 1 / k, args.block,
                                  args.max_growth)
                sessions = dict(dense=dense)
                for key in columns:
                    sessions[key] = onnx_session(
                        models[key], x,
                        osp.join(tmp, f'{len(sessions)}.onnx'))
                ms = latency_ms(sessions, x, args.rounds)
                pruned_flops = count_macs(models['as pruned']) / base
                cells = []
                for key in columns:
                    speed = ms['dense'] / ms[key]
                    cells.append(f'{count_macs(models[key]) / base:.3f} / '
                                 f'{speed:.2f}x ({speed * pruned_flops:.2f})')
                print(f'| {name} | {k:g}x | ' + ' | '.join(cells) + ' |',
                      flush=True)


if __name__ == '__main__':
    sys.exit(main())
