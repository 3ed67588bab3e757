"""Post-training quantization: calibrate a float checkpoint's fake-quants,
evaluate the fake-quant model and save it.

The config's ``model`` is an ``MMArchitectureQuant`` and its ``test_cfg`` a
``PTQLoop``; CHECKPOINT (a local float checkpoint) becomes
``model.float_checkpoint``. The calibrated model is saved atomically to
``WORK_DIR/model_ptq.pth`` (evaluate it again with tools/test.py and
``--cfg-options test_cfg.only_val=True``).

A pruned model (prune -> fine-tune -> quantize): ``--pruned
PRUNE_DIR/finetune.py`` (the fine-tuning config ``tools/prune.py`` wrote)
with CHECKPOINT its fine-tuned checkpoint quantizes the physically pruned
model instead of the config's architecture (the config gives the
quantizer, the calibration and the evaluation).

Examples:
    python tools/ptq.py \
        configs/quantization/ptq/ptq_openvino_resnet18-w16_fashion-mnist.py \
        work_dirs/resnet18-w16_fashion-mnist/epoch_6.pth
    python tools/ptq.py \
        configs/quantization/ptq/ptq_openvino_resnet18-w16_fashion-mnist.py \
        work_dirs/r18_pruned/finetune/epoch_3.pth \
        --pruned work_dirs/r18_pruned/finetune.py
"""
import argparse
import os.path as osp
from typing import Optional, Sequence

from mmengine.dist import is_main_process

from mmrazor.apis import (add_common_args, build_runner, config_from_args,
                          setup_launch)
from mmrazor.registry import explain_unknown_types
from mmrazor.utils import close_distributed, save_state_dict

PTQ_CHECKPOINT = 'model_ptq.pth'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Post-training quantization (calibrate and evaluate)')
    parser.add_argument('config', help='PTQ config file path')
    parser.add_argument('checkpoint', help='local float checkpoint file')
    parser.add_argument(
        '--pruned',
        metavar='FINETUNE_CONFIG',
        help='the finetune.py of a tools/prune.py run: quantize that '
        'pruned model (CHECKPOINT: its fine-tuned weights), sliced to its '
        'pruned shapes')
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    cfg = config_from_args(args)
    if not str(cfg.model.get('type')).endswith('MMArchitectureQuant'):
        raise ValueError('tools/ptq.py needs a config whose model is an '
                         'MMArchitectureQuant, got model.type='
                         f'{cfg.model.get("type")!r}')
    if args.pruned:
        from mmrazor.apis.prune import pruned_architecture
        pruned = pruned_architecture(args.pruned, args.checkpoint)
        print(f'Quantizing the pruned {pruned["architecture"].get("type")} '
              f'of {args.pruned} (weights: {args.checkpoint}) instead of '
              f'the config\'s {cfg.model.architecture.get("type")}')
        cfg.model.architecture = pruned
        cfg.model.float_checkpoint = None  # loaded before slicing
    else:
        cfg.model.float_checkpoint = args.checkpoint
    setup_launch(cfg, args.trust_checkpoint, args.checkpoint)
    runner = build_runner(cfg)
    with explain_unknown_types():
        metrics = runner.test()
    if is_main_process():
        path = osp.join(cfg.work_dir, PTQ_CHECKPOINT)
        save_state_dict(runner.model, path, meta=dict(quantized=True))
        print('PTQ metrics: ' + ', '.join(
            f'{k}: {v:.4f}' if isinstance(v, float) else f'{k}: {v}'
            for k, v in metrics.items()))
        print(f'Fake-quant checkpoint saved to {path}')
    del runner  # it holds the process group (model wrapper)
    close_distributed()
    return metrics


if __name__ == '__main__':
    main()
