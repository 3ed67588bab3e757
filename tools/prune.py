"""Prune a trained model to a FLOPs / parameter / latency target.

The first of three commands (prune, fine-tune, deploy)::

    python tools/prune.py CONFIG CKPT --target flops=0.5 --work-dir DIR
    python tools/train.py DIR/finetune.py --work-dir DIR/finetune
    python tools/deploy_subnet.py CONFIG --checkpoint DIR/finetune/epoch_N.pth \\
        --channel-cfg DIR/subnet.yaml --out-dir DIR/deployed --onnx

CONFIG builds the model (``model``) and may hold the pruning settings:
``pruner`` (an ``ImportancePruner`` config: criterion, exclusions,
guard-rails), ``prune_target`` (e.g. ``dict(flops=0.5)``), ``calibration``
(``dict(batches=N, bn_batches=M)``: training batches that a data-driven
criterion such as Taylor or Group Fisher reads, and batches that recompute
the BatchNorm statistics of the pruned model, 8 by default),
``input_shape`` and ``finetune`` (settings the fine-tuning config takes
instead, e.g. its schedule). Command-line flags override them.
``--target flops=3x`` means a third of the FLOPs.

Written to DIR: ``subnet.yaml`` (the kept units of every group),
``prune_report.json`` (costs reached, kept units), ``kept_units.png``,
``pruned.pth`` (CKPT's weights with the recomputed BatchNorm statistics,
in the unpruned shapes: it deploys as it is, before any fine-tuning) and
``finetune.py`` (the original config whose model is the masked pruned
model, starting from ``pruned.pth``, or from CKPT without a
``train_dataloader`` or with ``--bn-batches 0``).
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

from mmengine.config import DictAction


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Prune a trained model to a target by importance')
    parser.add_argument('config', help='config that builds the model')
    parser.add_argument('checkpoint', help='weights of the trained model')
    parser.add_argument(
        '--target',
        help='e.g. flops=0.5, flops=3x, params=0.4, latency=0.5 (kept '
        'fractions; several comma-separated)')
    parser.add_argument(
        '--importance',
        help='criterion, e.g. L1Importance, TaylorImportance, '
        'GroupFisherImportance (default: the config\'s pruner, else L1)')
    parser.add_argument(
        '--cost-normalization',
        choices=['flops', 'params', 'act', 'none'],
        help='rank units by importance per cost (Group Fisher style)')
    parser.add_argument(
        '--calib-batches',
        type=int,
        help='training batches a data-driven criterion reads')
    parser.add_argument(
        '--bn-batches',
        type=int,
        help='training batches that recompute the BatchNorm statistics of '
        'the pruned model (default: the config\'s calibration.bn_batches, '
        'else 8; 0: keep the unpruned model\'s)')
    parser.add_argument(
        '--input-shape',
        type=int,
        nargs='+',
        help='dummy input of the analysis, e.g. 1 3 224 224')
    parser.add_argument('--work-dir', help='output folder')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value')
    args = parser.parse_args(argv)
    for flag in ('calib_batches', 'bn_batches'):
        value = getattr(args, flag)
        if value is not None and value < 0:
            parser.error(f'--{flag.replace("_", "-")} {value}: a number of '
                         'batches (>= 0)')
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    import torch
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from mmrazor.apis.config_compat import load_config
    from mmrazor.apis.prune import (calibrate, check_calibration,
                                    check_target, data_driven,
                                    finetune_config, kept_table,
                                    parse_target, plot_kept, to_builtin,
                                    write_json_atomic)
    from mmrazor.core import recalibrate_bn
    from mmrazor.models.pruners import (ImportancePruner, build_pruner,
                                        dump_channel_cfg)
    from mmrazor.models.task_modules import load_weights
    from mmrazor.registry import MODELS
    from mmrazor.utils import register_all_modules, save_state_dict

    register_all_modules(init_default_scope=False)
    cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmrazor') or 'mmrazor')
    if 'model' not in cfg:
        raise KeyError(f'{args.config}: no `model` in the config')
    work_dir = args.work_dir or osp.join(
        'work_dirs',
        osp.splitext(osp.basename(args.config))[0] + '_pruned')
    os.makedirs(work_dir, exist_ok=True)

    pruner_cfg = dict(cfg.get('pruner', None) or {})
    pruner_cfg.setdefault('type', 'ImportancePruner')
    if args.importance:
        pruner_cfg['importance'] = dict(type=args.importance)
    if args.cost_normalization:
        pruner_cfg['cost_normalization'] = None if \
            args.cost_normalization == 'none' else args.cost_normalization
    shape = tuple(args.input_shape or cfg.get('input_shape', None)
                  or (1, 3, 224, 224))
    target = parse_target(args.target) if args.target else check_target(
        cfg.get('prune_target', None) or {}, f'{args.config}: prune_target')
    if not target:
        raise SystemExit('give --target (e.g. flops=0.5) or `prune_target` '
                         'in the config')
    calib = check_calibration(cfg.get('calibration', None) or {},
                              f'{args.config}: calibration')

    torch.manual_seed(args.seed)
    model = MODELS.build(cfg.model)
    load_weights(model, args.checkpoint)
    model.eval()
    kind = MODELS.get(pruner_cfg['type'])
    if not (isinstance(kind, type) and issubclass(kind, ImportancePruner)):
        raise SystemExit(f'pruner: type {pruner_cfg["type"]!r} is no '
                         'pruner with an importance criterion; use '
                         'ImportancePruner (or a subclass)')
    pruner = build_pruner(pruner_cfg, shape)
    pruner.prepare_from_supernet(model)
    print(f'{len(pruner.units)} prunable channel groups; criterion '
          f'{pruner.importance!r}')
    loaders = []  # built once, when first needed

    def train_loader(purpose: str):
        if not loaders:
            try:
                loaders.append(Runner.build_dataloader(
                    cfg.train_dataloader, seed=args.seed))
            except Exception as err:
                raise SystemExit(
                    f'{args.config}: the train_dataloader, read {purpose}, '
                    f'cannot be built: {type(err).__name__}: {err}') from err
        return loaders[0]

    if data_driven(pruner):
        batches = args.calib_batches or calib.get('batches', 16)
        if 'train_dataloader' not in cfg:
            raise SystemExit(f'{pruner.importance!r} reads training data: '
                             'the config needs a train_dataloader')
        print(f'calibrating on {batches} training batches')
        calibrate(pruner, model,
                  train_loader(f'by {type(pruner.importance).__name__}'),
                  batches)

    report = pruner.prune_to_target(**target)
    print(kept_table(pruner))
    bn_batches = args.bn_batches if args.bn_batches is not None else \
        calib.get('bn_batches', 8)
    start_from = osp.abspath(args.checkpoint)
    if bn_batches > 0 and 'train_dataloader' not in cfg:
        print('no train_dataloader in the config: the BatchNorm statistics '
              'stay those of the unpruned model')
    elif bn_batches > 0:
        used = recalibrate_bn(
            model,
            train_loader('to recompute the BatchNorm statistics (skip '
                         'with --bn-batches 0)'), bn_batches)
        if used:
            # the masked model: unpruned shapes, the new statistics
            start_from = osp.abspath(osp.join(work_dir, 'pruned.pth'))
            save_state_dict(model, start_from, meta=dict(
                pruned_from=osp.abspath(args.checkpoint),
                bn_recalibrated_batches=used))
            print(f'BatchNorm statistics recomputed on {used} training '
                  f'batches: {start_from}')
    subnet_path = osp.join(work_dir, 'subnet.yaml')
    dump_channel_cfg(pruner.export_subnet(), subnet_path)
    report = dict(
        to_builtin(report),
        target=target,
        config=osp.abspath(args.config),
        checkpoint=osp.abspath(args.checkpoint),
        pruned_checkpoint=start_from,
        importance=repr(pruner.importance),
        input_shape=list(shape))
    write_json_atomic(report, osp.join(work_dir, 'prune_report.json'))
    plot_kept(
        pruner, osp.join(work_dir, 'kept_units.png'),
        f'{osp.basename(args.config)}: flops {report["flops_ratio"]:.3f}')
    saved = dict(pruner_cfg)
    saved['importance'] = dict(type=type(pruner.importance).__name__)
    ft_cfg = finetune_config(cfg, subnet_path, start_from, shape, saved)
    ft_path = osp.join(work_dir, 'finetune.py')
    ft_cfg.dump(ft_path)
    print(f'reached flops {report["flops_ratio"]:.4f}, params '
          f'{report["params_ratio"]:.4f} of the unpruned model')
    print(f'wrote {subnet_path}, {ft_path}')
    print(f'top-1 as pruned: python tools/test.py {ft_path} {start_from}')
    print('next: python tools/train.py ' + ft_path +
          f' --work-dir {osp.join(work_dir, "finetune")}')
    print(f'then: python tools/deploy_subnet.py {args.config} --checkpoint '
          f'<finetuned .pth, or {start_from} as pruned> --channel-cfg '
          f'{subnet_path} --input-shape '
          f'{" ".join(map(str, shape))} --out-dir '
          f'{osp.join(work_dir, "deployed")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
