"""Evaluate a checkpoint, optionally of a fixed subnet.

Examples:
    python tools/test.py CONFIG work_dirs/x/epoch_6.pth
    python tools/test.py CONFIG CKPT --subnet subnet.yaml
"""
import argparse

from mmengine.dist import is_main_process

from mmrazor.apis import (add_common_args, build_runner, config_from_args,
                          setup_launch)
from mmrazor.registry import explain_unknown_types
from mmrazor.utils import close_distributed


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--subnet',
        help='subnet YAML to fix in the model before testing (sets '
        'model.fix_subnet)')
    parser.add_argument(
        '--out', help='dump the predictions to this pickle file')
    add_common_args(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = config_from_args(args)
    cfg.load_from = args.checkpoint
    if args.out is not None:
        cfg.test_evaluator = [
            *(cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else
              [cfg.test_evaluator]),
            dict(type='DumpResults', out_file_path=args.out)
        ]
    setup_launch(cfg, args.trust_checkpoint, args.checkpoint)
    runner = build_runner(cfg)
    with explain_unknown_types():
        metrics = runner.test()
    if is_main_process():
        # Printed as well as logged: the result must show whatever log_level.
        print('Test metrics: ' + ', '.join(
            f'{k}: {v:.4f}' if isinstance(v, float) else f'{k}: {v}'
            for k, v in metrics.items()))
    del runner  # it holds the process group (model wrapper)
    close_distributed()


if __name__ == '__main__':
    main()
