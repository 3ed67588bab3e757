"""Train whatever model or algorithm a config holds.

Examples:
    python tools/train.py configs/vanilla/resnet18-w16_fashion-mnist.py
    python tools/train.py CONFIG --resume            # latest in work dir
    torchrun --nproc_per_node 2 tools/train.py CONFIG --launcher pytorch
"""
import argparse

from mmrazor.apis import (add_common_args, apply_resume, build_runner,
                          config_from_args, enable_amp, setup_launch)
from mmrazor.registry import explain_unknown_types
from mmrazor.utils import close_distributed


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        help='resume from CHECKPOINT, or from the latest checkpoint of the '
        'work dir when no path is given')
    parser.add_argument(
        '--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by the total batch size')
    add_common_args(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = config_from_args(args)
    if args.amp:
        enable_amp(cfg)
    if args.auto_scale_lr:
        cfg.setdefault('auto_scale_lr', {})['enable'] = True
    apply_resume(cfg, args.resume)
    setup_launch(cfg, args.trust_checkpoint)
    runner = build_runner(cfg)
    with explain_unknown_types():
        runner.train()
    del runner  # it holds the process group (model wrapper)
    close_distributed()


if __name__ == '__main__':
    main()
