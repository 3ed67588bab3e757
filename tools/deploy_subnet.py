"""Turn a pruned subnet into a deployable artefact, and check it.

The artefact (a folder) holds:

* ``model_config.py`` / ``model_spec.json``: how to build the original
  (unpruned) model: a copy of the config, or a torchvision model name;
* ``channel_cfg.yaml``: the channel config (layer -> in/out channels), as
  ``StructurePruner.export_subnet`` writes it;
* ``structure.json``: the size attributes of every resized layer;
* ``pruned_state_dict.pth``: the sliced weights (a plain ``state_dict``,
  loadable with ``torch.load(..., weights_only=True)``; never a pickled
  module);
* ``model.onnx`` with ``--onnx`` when ``onnx`` is installed (with
  ``--onnx-channel-block 16`` its channel counts are padded to multiples
  of 16 with channels that compute zeros, for onnxruntime's blocked CPU
  convolutions; same outputs);
* ``deploy_report.json``: sizes and the output checks.

Loading it back needs only torch and the model's own library (not mmrazor):
``mmrazor.models.task_modules.load_deployed`` (torch-only code) resizes the
layers of a freshly built model to ``structure.json`` and loads the weights.

This script only parses the command line and builds the model; the work is
done by ``mmrazor.models.task_modules.deploy_pruned``.

Examples::

    python tools/deploy_subnet.py --torchvision resnet18 \\
        --channel-cfg work_dirs/r18/subnet.yaml --out-dir work_dirs/r18_dep \\
        --input-shape 1 3 224 224
    python tools/deploy_subnet.py CONFIG --checkpoint CKPT \\
        --channel-cfg subnet.yaml --out-dir out [--onnx] [--random-subnet]

The tool runs the deployed model and the masked model on the same input and
fails (exit code 1) when they differ or when a module's size attributes
went stale (the message names the module).
"""
import argparse
import json
import sys
from typing import Any, Dict, Tuple

import torch
from torch import nn


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Physically prune a model to a channel config and '
        'write a portable artefact')
    parser.add_argument('config', nargs='?', help='model config (mmengine '
                        'Config with a `model` dict)')
    parser.add_argument('--torchvision', help='a torchvision model name '
                        'instead of a config (random weights)')
    parser.add_argument('--checkpoint', help='weights of the unpruned '
                        'model (a state_dict or {"state_dict": ...})')
    parser.add_argument('--channel-cfg', help='channel config YAML')
    parser.add_argument('--random-subnet', action='store_true',
                        help='no channel config: sample a random subnet '
                        '(and write it)')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--input-shape', type=int, nargs='+',
                        default=None, help='dummy input, e.g. 1 3 224 224')
    parser.add_argument('--except-start-keys', nargs='*', default=None)
    parser.add_argument('--onnx', action='store_true',
                        help='also export ONNX (needs `onnx`)')
    parser.add_argument(
        '--onnx-channel-block', type=int, default=0,
        help='pad the ONNX model\'s channel counts to multiples of this '
        'with channels that compute zeros (16 for onnxruntime on AVX-512 '
        'CPUs, 8 on AVX2; 0: as pruned)')
    parser.add_argument(
        '--onnx-max-growth', type=float, default=1.5,
        help='leave a group unpadded when padding would multiply its '
        'channels by more than this')
    parser.add_argument('--atol', type=float, default=1e-3)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if not args.config and not args.torchvision:
        parser.error('give a CONFIG or --torchvision NAME')
    if not args.channel_cfg and not args.random_subnet:
        parser.error('give --channel-cfg FILE or --random-subnet')
    if args.onnx_channel_block > 1 and not args.onnx:
        parser.error('--onnx-channel-block pads the ONNX model: add --onnx')
    if args.onnx_max_growth < 1:
        parser.error(f'--onnx-max-growth {args.onnx_max_growth}: padding '
                     'only adds channels (>= 1)')
    return args


def _build(args) -> Tuple[nn.Module, Any, Dict]:
    """The original model, the config (if any), pruner kwargs."""
    from mmrazor.registry import MODELS
    if args.torchvision:
        import torchvision
        kwargs = dict(aux_logits=False, init_weights=True) \
            if args.torchvision == 'googlenet' else {}
        torch.manual_seed(args.seed)
        model = getattr(torchvision.models, args.torchvision)(
            weights=None, **kwargs)
        return model, None, {}
    from mmrazor.apis.config_compat import load_config
    cfg = load_config(args.config)
    if 'model' not in cfg:
        raise KeyError(f'{args.config}: no `model` in the config')
    torch.manual_seed(args.seed)
    model = MODELS.build(cfg.model)
    pruner_cfg = dict(cfg.get('pruner', {}) or {})
    return model, cfg, pruner_cfg


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmrazor.models.task_modules import (deploy_pruned, load_weights,
                                             missing_onnx_packages)
    if args.onnx:
        missing = missing_onnx_packages()
        if missing:
            raise SystemExit(
                f'--onnx needs {", ".join(missing)}: pip install -e '
                '".[optional]" (or drop --onnx)')
    from mmrazor.utils import register_all_modules
    register_all_modules()
    model, cfg, pruner_cfg = _build(args)
    if args.checkpoint:
        load_weights(model, args.checkpoint)
    shape = tuple(args.input_shape or (cfg.get('input_shape') if cfg else
                                       None) or (1, 3, 224, 224))
    report = deploy_pruned(
        model,
        args.channel_cfg or None,
        args.out_dir,
        shape,
        model_config=args.config if cfg is not None else None,
        model_spec=None if cfg is not None else dict(
            torchvision=args.torchvision),
        build_fresh=lambda: _build(args)[0],
        pruner_cfg=pruner_cfg,
        except_start_keys=args.except_start_keys,
        seed=args.seed,
        onnx=args.onnx,
        atol=args.atol,
        onnx_channel_block=args.onnx_channel_block,
        onnx_max_growth=args.onnx_max_growth)
    problems = report.problems
    print(json.dumps(report.to_dict(), indent=1))
    if problems:
        print('DEPLOY CHECK FAILED:\n  ' + '\n  '.join(problems),
              file=sys.stderr)
        return 1
    print(f'deployed: {report.params_before} -> {report.params_after} '
          f'params; artefact in {args.out_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
