"""Extract the student from a distillation checkpoint.

The result is a plain checkpoint (``{'state_dict': ..., 'meta': ...}``) that
the student's own config loads with no missing or unexpected keys, e.g.::

    python tools/model_converters/extract_student.py \
        work_dirs/distill_fmnist/kd_seed0/epoch_6.pth student.pth \
        --verify \
        configs/distill/fashion_mnist/student_resnet18-w4_fashion-mnist.py
    python tools/test.py \
        configs/distill/fashion_mnist/student_resnet18-w4_fashion-mnist.py \
        student.pth

The input is read with ``weights_only=True`` (mmrazor's safe loader) and the
output is written atomically (temporary file + rename).
"""
import argparse
import io
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch

from mmrazor.utils import atomic_write_bytes, safe_torch_load

#: Where distillation algorithms keep the student, most specific first.
STUDENT_PREFIXES = ('architecture.model.', 'architecture.')


def student_state_dict(
        checkpoint: dict,
        prefix: Optional[str] = None) -> Tuple[Dict[str, torch.Tensor], str]:
    """The student's weights from a distillation checkpoint.

    Args:
        checkpoint (dict): A loaded checkpoint (with ``state_dict``) or a
            bare state dict.
        prefix (str, optional): Key prefix of the student. By default
            ``'architecture.model.'`` (an ``MMClsArchitecture`` student) or
            else ``'architecture.'``.

    Returns:
        tuple[dict, str]: The student's state dict (prefix removed) and the
        prefix used.

    Raises:
        KeyError: No key has the prefix.
    """
    state = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state, dict):
        raise TypeError('the checkpoint holds no state dict')
    candidates = (prefix, ) if prefix else STUDENT_PREFIXES
    for pre in candidates:
        student = OrderedDict(
            (k[len(pre):], v) for k, v in state.items() if k.startswith(pre))
        if student:
            return student, pre
    tops = sorted({k.split('.')[0] for k in state})
    raise KeyError(
        f'no weights under {" or ".join(repr(p) for p in candidates)} in the '
        f'checkpoint; its top-level keys are {tops}. Is it a distillation '
        'checkpoint? Pass --prefix to name where the student is')


def extract(src: str,
            dst: str,
            prefix: Optional[str] = None) -> Dict[str, torch.Tensor]:
    """Write the student of distillation checkpoint ``src`` to ``dst``.

    Args:
        src (str): Distillation checkpoint.
        dst (str): Output checkpoint.
        prefix (str, optional): See :func:`student_state_dict`.

    Returns:
        dict: The student's state dict.
    """
    checkpoint = safe_torch_load(src, map_location='cpu')
    state, used = student_state_dict(checkpoint, prefix)
    meta = dict(source=str(src), student_prefix=used)
    old_meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    if isinstance(old_meta, dict):
        for key in ('epoch', 'iter', 'seed', 'mmengine_version'):
            if isinstance(old_meta.get(key), (int, str)):
                meta[key] = old_meta[key]
    buffer = io.BytesIO()
    torch.save(dict(state_dict=state, meta=meta), buffer)
    atomic_write_bytes(buffer.getvalue(), dst)
    return state


def verify(config: str, dst: str) -> None:
    """Load ``dst`` strictly into the model of ``config``.

    Args:
        config (str): The student's plain config.
        dst (str): The extracted checkpoint.

    Raises:
        RuntimeError: Keys are missing or unexpected.
    """
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint

    from mmrazor.registry import MODELS
    from mmrazor.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(config)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, dst, map_location='cpu', strict=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Extract the student from a distillation checkpoint')
    parser.add_argument('checkpoint', help='distillation checkpoint')
    parser.add_argument('output', help='where to write the student')
    parser.add_argument(
        '--prefix',
        help='key prefix of the student (default: architecture.model. or '
        'architecture.)')
    parser.add_argument(
        '--verify',
        metavar='CONFIG',
        help='load the result strictly into the model of this plain config')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    state = extract(args.checkpoint, args.output, args.prefix)
    print(f'wrote {len(state)} tensors of the student to {args.output}')
    if args.verify:
        verify(args.verify, args.output)
        print(f'{args.output} loads into {args.verify} with no missing or '
              'unexpected keys')


if __name__ == '__main__':
    main()
