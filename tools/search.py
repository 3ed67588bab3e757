"""Search a trained supernet for the best subnet under constraints.

Example:
    python tools/search.py configs/nas/spos/spos_shufflenet-s_search_fashion-mnist.py \
        work_dirs/spos_shufflenet-s_supernet_fashion-mnist/epoch_6.pth
    # continue a search that was interrupted
    python tools/search.py CONFIG CKPT --resume
"""
import argparse

from mmrazor.apis import (add_common_args, config_from_args, run_search,
                          setup_launch)
from mmrazor.utils import close_distributed


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Search a supernet')
    parser.add_argument('config', help='search config (holds `searcher`)')
    parser.add_argument('checkpoint', help='trained supernet checkpoint')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        help='continue from a search_state.json (default: the one in the '
        'work dir)')
    add_common_args(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = config_from_args(args)
    resume_from = None
    if args.resume == 'auto':
        cfg.resume_search = True
    elif args.resume:
        resume_from = args.resume
    setup_launch(cfg, args.trust_checkpoint, args.checkpoint)
    run_search(cfg, args.checkpoint, resume_from)
    close_distributed()


if __name__ == '__main__':
    main()
