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
* ``model.onnx`` with ``--onnx`` when ``onnx`` is installed;
* ``deploy_report.json``: sizes and the output checks.

Loading it back needs only torch and the model's own library (not mmrazor):
:func:`load_deployed` resizes the layers of a freshly built model to
``structure.json`` and loads the weights.

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
import importlib.util
import json
import os
import os.path as osp
import shutil
import sys
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

# ------------------------------------------------ torch-only loading side

_ATTRS = {
    'conv': ('in_channels', 'out_channels', 'groups'),
    'linear': ('in_features', 'out_features'),
    'bn': ('num_features', ),
    'gn': ('num_channels', 'num_groups'),
    'ln': ('normalized_shape', ),
    'prelu': ('num_parameters', ),
}


def _kind(m: nn.Module) -> Optional[str]:
    if isinstance(m, nn.modules.conv._ConvNd):
        return 'conv'
    if isinstance(m, nn.Linear):
        return 'linear'
    if isinstance(m, nn.modules.batchnorm._NormBase):
        return 'bn'
    if isinstance(m, nn.GroupNorm):
        return 'gn'
    if isinstance(m, nn.LayerNorm):
        return 'ln'
    if isinstance(m, nn.PReLU):
        return 'prelu'
    return None


def structure_of(model: nn.Module) -> Dict[str, Dict[str, Any]]:
    """Size attributes of every layer with channel weights.

    Args:
        model (nn.Module): A (deployed) model.

    Returns:
        dict: Module name -> ``{attr: value}``.
    """
    out = {}
    for name, m in model.named_modules():
        kind = _kind(m)
        if kind is not None:
            out[name] = {
                a: (list(getattr(m, a)) if isinstance(
                    getattr(m, a), (tuple, list)) else getattr(m, a))
                for a in _ATTRS[kind]
            }
    return out


def load_deployed(model: nn.Module, artefact_dir: str) -> nn.Module:
    """Resize a freshly built original model to a deployed artefact and
    load its weights (torch only; ``weights_only=True``).

    Args:
        model (nn.Module): The original model, built as the artefact's
            config says.
        artefact_dir (str): Folder written by this tool.

    Returns:
        nn.Module: ``model``, resized and loaded, in eval mode.
    """
    with open(osp.join(artefact_dir, 'structure.json')) as f:
        structure = json.load(f)
    state = torch.load(
        osp.join(artefact_dir, 'pruned_state_dict.pth'),
        map_location='cpu',
        weights_only=True)
    modules = dict(model.named_modules())
    for name, attrs in structure.items():
        if name not in modules:
            raise KeyError(f'structure.json: the model has no module '
                           f'{name!r}')
        m = modules[name]
        for attr, value in attrs.items():
            setattr(m, attr,
                    tuple(value) if isinstance(value, list) else value)
    # Resize parameters and buffers to the stored shapes.
    for key, value in state.items():
        owner_name, _, attr = key.rpartition('.')
        owner = modules.get(owner_name)
        if owner is None:
            continue
        if attr in owner._parameters and owner._parameters[attr] is not \
                None and owner._parameters[attr].shape != value.shape:
            owner._parameters[attr] = nn.Parameter(
                torch.empty_like(value),
                requires_grad=owner._parameters[attr].requires_grad)
        elif attr in owner._buffers and owner._buffers[attr] is not None \
                and owner._buffers[attr].shape != value.shape:
            owner._buffers[attr] = torch.empty_like(value)
    model.load_state_dict(state)
    return model.eval()


# ------------------------------------------------------------ deploy side


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
    parser.add_argument('--atol', type=float, default=1e-3)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if not args.config and not args.torchvision:
        parser.error('give a CONFIG or --torchvision NAME')
    if not args.channel_cfg and not args.random_subnet:
        parser.error('give --channel-cfg FILE or --random-subnet')
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
    from mmengine.config import Config
    cfg = Config.fromfile(args.config)
    if 'model' not in cfg:
        raise KeyError(f'{args.config}: no `model` in the config')
    torch.manual_seed(args.seed)
    model = MODELS.build(cfg.model)
    pruner_cfg = dict(cfg.get('pruner', {}) or {})
    return model, cfg, pruner_cfg


def _load_checkpoint(model: nn.Module, path: str) -> None:
    state = torch.load(path, map_location='cpu', weights_only=True)
    if isinstance(state, dict) and 'state_dict' in state:
        state = state['state_dict']
    model.load_state_dict(state)


def _max_diff(a: Any, b: Any) -> float:
    if isinstance(a, torch.Tensor):
        return (a.float() - b.float()).abs().max().item()
    if isinstance(a, (list, tuple)):
        return max([_max_diff(x, y) for x, y in zip(a, b)] or [0.0])
    if isinstance(a, dict):
        return max([_max_diff(a[k], b[k]) for k in a] or [0.0])
    return 0.0


def _forward(model: nn.Module, x: torch.Tensor) -> Any:
    with torch.no_grad():
        if hasattr(model, 'forward_dummy'):
            return model.forward_dummy(x)
        return model(x)


class _LayerRecorder:
    """Records the outputs of the analysed layers, to name the first layer
    whose deployed output differs from the masked one."""

    def __init__(self, layers: Dict[str, Any]) -> None:
        self.layers = layers
        self.outputs: Dict[str, torch.Tensor] = {}
        self.order: List[str] = []
        self.handles: list = []

    def start(self) -> None:
        self.outputs, self.order = {}, []
        for name, rec in self.layers.items():

            def hook(mod, inp, out, name=name):
                if isinstance(out, torch.Tensor) and name not in \
                        self.outputs:
                    self.outputs[name] = out.detach().clone()
                    self.order.append(name)

            self.handles.append(rec.module.register_forward_hook(hook))

    def stop(self) -> Dict[str, torch.Tensor]:
        for h in self.handles:
            h.remove()
        self.handles = []
        return dict(self.outputs)


def first_mismatch(masked: Dict[str, torch.Tensor], order: List[str],
                   deployed: Dict[str, torch.Tensor], layer_masks: Dict,
                   layers: Dict, atol: float) -> Optional[str]:
    """The first layer (in execution order) whose deployed output differs
    from its masked output restricted to the kept channels."""
    for name in order:
        if name not in deployed:
            return f'{name} (did not run in the deployed model)'
        keep = layer_masks[name][1]
        ref = masked[name]
        dim = layers[name].out_dim % ref.dim()
        if ref.shape[dim] == len(keep):
            idx = torch.from_numpy(keep.nonzero()[0]).to(ref.device)
            ref = ref.index_select(dim, idx)
        got = deployed[name]
        if got.shape != ref.shape:
            return f'{name}: output shape {tuple(got.shape)}, expected ' \
                f'{tuple(ref.shape)}'
        diff = (got - ref).abs().max().item()
        if diff > atol:
            return f'{name}: max diff {diff:.3g}'
    return None


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.onnx:
        missing = [
            name for name in ('onnx', 'onnxscript', 'onnxruntime')
            if importlib.util.find_spec(name) is None
        ]
        if missing:
            raise SystemExit(
                f'--onnx needs {", ".join(missing)}: pip install -e '
                '".[optional]" (or drop --onnx)')
    from mmrazor.models.pruners import (StructurePruner, dump_channel_cfg,
                                        load_channel_cfg, stale_attributes)
    from mmrazor.utils import atomic_write_bytes, register_all_modules
    register_all_modules()
    model, cfg, pruner_cfg = _build(args)
    if args.checkpoint:
        _load_checkpoint(model, args.checkpoint)
    model.eval()
    shape = tuple(args.input_shape or (cfg.get('input_shape') if cfg else
                                       None) or (1, 3, 224, 224))
    pruner_cfg.pop('type', None)
    if args.except_start_keys is not None:
        pruner_cfg['except_start_keys'] = args.except_start_keys
    pruner_cfg.setdefault('except_start_keys', ['head.fc'])
    pruner = StructurePruner(**pruner_cfg)
    pruner.prepare_from_supernet(model, input_shape=shape)
    if args.channel_cfg:
        channel_cfg = load_channel_cfg(args.channel_cfg)
        pruner.set_subnet(channel_cfg)
    else:
        import random
        random.seed(args.seed)
        pruner.set_subnet(pruner.sample_subnet())
    channel_cfg = pruner.export_subnet()
    torch.manual_seed(args.seed + 1)
    x = torch.randn(*shape)
    params_before = sum(p.numel() for p in model.parameters())
    recorder = _LayerRecorder(pruner.dependency.layers)
    layer_masks = pruner._layer_masks()
    recorder.start()
    masked = _forward(model, x)
    masked_layers, order = recorder.stop(), list(recorder.order)
    pruner.deploy_subnet(model, channel_cfg)
    recorder.start()
    deployed = _forward(model, x)
    deployed_layers = recorder.stop()
    params_after = sum(p.numel() for p in model.parameters())
    report: Dict[str, Any] = dict(
        input_shape=list(shape),
        params_before=params_before,
        params_after=params_after,
        max_diff_deployed_vs_masked=_max_diff(masked, deployed),
        stale_attributes=stale_attributes(model),
        first_mismatch=first_mismatch(masked_layers, order, deployed_layers,
                                      layer_masks,
                                      pruner.dependency.layers, args.atol),
        torch_version=torch.__version__)

    os.makedirs(args.out_dir, exist_ok=True)
    if cfg is not None:
        shutil.copyfile(args.config,
                        osp.join(args.out_dir, 'model_config.py'))
    else:
        with open(osp.join(args.out_dir, 'model_spec.json'), 'w') as f:
            json.dump(dict(torchvision=args.torchvision), f)
    dump_channel_cfg(channel_cfg, osp.join(args.out_dir,
                                           'channel_cfg.yaml'))
    with open(osp.join(args.out_dir, 'structure.json'), 'w') as f:
        json.dump(structure_of(model), f, indent=1)
    torch.save(model.state_dict(),
               osp.join(args.out_dir, 'pruned_state_dict.pth'))

    # Reload the artefact into a fresh original model (torch-only path).
    fresh, _, _ = _build(args)
    load_deployed(fresh, args.out_dir)
    reloaded = _forward(fresh, x)
    report['max_diff_reloaded_vs_masked'] = _max_diff(masked, reloaded)
    report['stale_attributes_reloaded'] = stale_attributes(fresh)

    if args.onnx:
        path = osp.join(args.out_dir, 'model.onnx')
        torch.onnx.export(fresh, x, path, opset_version=17)
        report['onnx'] = path
        import numpy as np
        import onnxruntime as ort
        sess = ort.InferenceSession(path)
        ort_out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
        report['max_diff_onnxruntime_vs_masked'] = float(
            np.abs(ort_out[0] - masked.numpy()).max())
    atomic_write_bytes(
        json.dumps(report, indent=1).encode(),
        osp.join(args.out_dir, 'deploy_report.json'))

    problems = report['stale_attributes'] + \
        report['stale_attributes_reloaded']
    if report['first_mismatch']:
        problems.append('first layer that differs: ' +
                        report['first_mismatch'])
    for key in ('max_diff_deployed_vs_masked', 'max_diff_reloaded_vs_masked',
                'max_diff_onnxruntime_vs_masked'):
        if report.get(key, 0.0) > args.atol:
            problems.append(f'{key}={report[key]:.3g} > atol={args.atol}')
    print(json.dumps(report, indent=1))
    if problems:
        print('DEPLOY CHECK FAILED:\n  ' + '\n  '.join(problems),
              file=sys.stderr)
        return 1
    print(f'deployed: {params_before} -> {params_after} params; artefact '
          f'in {args.out_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
