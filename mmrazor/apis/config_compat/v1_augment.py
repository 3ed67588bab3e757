"""MMRazor 1.x's ``AutoAugmentV2`` and its ops, read as mmpretrain's.

The BigNAS settings of MMRazor 1.x (``imagenet_bs2048_bignas.py``) augment
with ``mmrazor.AutoAugmentV2``: a random sub-policy of two ops (adapted from
timm), each written ``dict(type='mmrazor.RotateV2', prob=0.6, magnitude=8,
extra_params=...)``: applied with probability ``prob``, its strength a level
in [0, 10] jittered by a normal of std 0.5 (clipped to [0, 10]) and mapped
linearly to the op's range, negated with probability 1/2 for geometric ops.
mmpretrain has every one of these ops, and its ``magnitude_level``,
``magnitude_range``, ``magnitude_std`` and ``total_level`` arguments express
the same level mapping, so each op becomes the mmpretrain transform below
(:data:`OPS_1X`) inside ``mmpretrain.AutoAugment``.

Two details of the 1.x code are kept as it behaved, not as its arguments
suggest: geometric ops filled with black using nearest-neighbour sampling
(``extra_params`` ``img_mean`` / ``interpolation`` were stored but never
reached PIL), and ``extra_params`` otherwise had no effect. One detail
differs: 1.x drew the jitter and the sign of an op once, when the pipeline
was built, and kept them for the whole run; mmpretrain draws them for every
image, as timm (where the ops come from) does.

Ops whose 1.x meaning has no mmpretrain equivalent (``TranslateX`` /
``TranslateY``: absolute offsets of 250 px whatever the image size) are
refused by name.
"""
from collections import Counter
from typing import Any, Dict, List, Optional, Tuple

#: The level range of the 1.x ops (timm's ``_MAX_LEVEL``).
TOTAL_LEVEL = 10
#: The jitter of the level (``AutoAugmentOp.magnitude_std``).
MAGNITUDE_STD = 0.5
#: What geometric ops filled with and how they sampled, in effect.
GEOMETRIC = dict(pad_val=0, interpolation='nearest')
#: Keys of ``extra_params`` the 1.x ops read (none reached the images).
EXTRA_PARAMS = ('translate_const', 'img_mean', 'interpolation')


def _levelled(new: str, low: float, high: float, negate: Optional[bool],
              **fixed: Any) -> Dict[str, Any]:
    """An op whose level maps linearly onto ``[low, high]``, negated with
    probability 1/2 when ``negate`` (None: the op never negates and takes
    no ``random_negative_prob``)."""
    op = dict(
        type=new,
        magnitude_range=(low, high),
        magnitude_std=MAGNITUDE_STD,
        total_level=TOTAL_LEVEL,
        **fixed)
    if negate is not None:
        op['random_negative_prob'] = 0.5 if negate else 0.0
    return op


#: 1.x op -> the mmpretrain transform (without ``prob`` and the level),
#: or None for an op with no level. ``factor = 1 + magnitude`` in
#: mmpretrain's enhancement ops, so 1.x's factor range [0.1, 1.9] is the
#: magnitude range [-0.9, 0.9], never negated. 1.x's posterize keeps
#: ``floor(level * 0.4) + 4`` bits, mmpretrain ``ceil(value)`` bits: the
#: range (3, 7) gives the same count (but on a level of exactly 0, 2.5, 5,
#: 7.5 or 10, which the jitter makes improbable).
OPS_1X: Dict[str, Dict[str, Any]] = {
    'ShearX':
    _levelled('mmpretrain.Shear', 0., 0.3, True, direction='horizontal',
              **GEOMETRIC),
    'ShearY':
    _levelled('mmpretrain.Shear', 0., 0.3, True, direction='vertical',
              **GEOMETRIC),
    'TranslateXRel':
    _levelled('mmpretrain.Translate', 0., 0.45, True,
              direction='horizontal', **GEOMETRIC),
    'TranslateYRel':
    _levelled('mmpretrain.Translate', 0., 0.45, True, direction='vertical',
              **GEOMETRIC),
    'RotateV2':
    _levelled('mmpretrain.Rotate', 0., 30., True, **GEOMETRIC),
    'SolarizeV2':
    _levelled('mmpretrain.Solarize', 0., 256., None),
    'SolarizeAddV2':
    _levelled('mmpretrain.SolarizeAdd', 0., 110., None, thr=128),
    'PosterizeV2':
    _levelled('mmpretrain.Posterize', 3., 7., None),
    'ContrastV2':
    _levelled('mmpretrain.Contrast', -0.9, 0.9, False),
    'Color':
    _levelled('mmpretrain.ColorTransform', -0.9, 0.9, False),
    'BrightnessV2':
    _levelled('mmpretrain.Brightness', -0.9, 0.9, False),
    'SharpnessV2':
    _levelled('mmpretrain.Sharpness', -0.9, 0.9, False),
    'AutoContrastV2':
    dict(type='mmpretrain.AutoContrast'),
    'InvertV2':
    dict(type='mmpretrain.Invert'),
    'EqualizeV2':
    dict(type='mmpretrain.Equalize'),
}

#: 1.x ops refused, and why.
REFUSED_1X: Dict[str, str] = {
    'TranslateX': 'shifts by level / 10 * 250 pixels whatever the image '
    "size; mmpretrain's Translate shifts by a fraction of the size (use "
    'TranslateXRel)',
    'TranslateY': 'shifts by level / 10 * 250 pixels whatever the image '
    "size; mmpretrain's Translate shifts by a fraction of the size (use "
    'TranslateYRel)',
    'AutoAugmentOp': 'is the base class of the 1.x ops and does nothing',
}

AUTO_AUGMENT_1X = 'AutoAugmentV2'


def _bare_1x_name(type_name: Any) -> Optional[str]:
    """The 1.x augmentation ``type_name`` names (``mmrazor.`` prefix or
    none), or None."""
    if not isinstance(type_name, str):
        return None
    scope, dot, bare = type_name.partition('.')
    if not dot:
        scope, bare = None, type_name
    if scope not in (None, 'mmrazor'):
        return None
    known = set(OPS_1X) | set(REFUSED_1X) | {AUTO_AUGMENT_1X}
    return bare if bare in known else None


def translate_op(op: Dict[str, Any], where: str) -> Dict[str, Any]:
    """The mmpretrain transform of one 1.x ``AutoAugmentV2`` op.

    Args:
        op (dict): E.g. ``dict(type='mmrazor.RotateV2', prob=0.6,
            magnitude=8, extra_params=dict(...))``.
        where (str): Where it is, for errors.

    Returns:
        dict: E.g. ``dict(type='mmpretrain.Rotate', prob=0.6,
        magnitude_level=8, magnitude_range=(0., 30.), ...)``.

    Raises:
        ValueError: An op refused (:data:`REFUSED_1X`), unknown keys, a
            level outside [0, 10], or unknown ``extra_params`` keys.
    """
    bare = _bare_1x_name(op.get('type'))
    if bare is None or bare == AUTO_AUGMENT_1X:
        raise ValueError(f'{where}: {op.get("type")!r} is not an op of '
                         f'MMRazor 1.x\'s AutoAugmentV2 (known: '
                         f'{sorted(OPS_1X)})')
    if bare in REFUSED_1X:
        raise ValueError(f'{where}: type={op["type"]!r} cannot be read: it '
                         f'{REFUSED_1X[bare]}')
    # `_scope_`: set by mmengine on dicts of a `mmrazor::` base; the new
    # type carries its scope
    extra = sorted(
        set(op) - {'type', 'prob', 'magnitude', 'extra_params', '_scope_'})
    if extra:
        raise ValueError(f'{where}: {op["type"]} has keys {extra}; 1.x ops '
                         'take only prob, magnitude and extra_params')
    params = op.get('extra_params') or {}
    unknown = sorted(set(params) - set(EXTRA_PARAMS))
    if unknown:
        raise ValueError(f'{where}: {op["type"]} extra_params keys '
                         f'{unknown} are unknown (1.x read only '
                         f'{list(EXTRA_PARAMS)})')
    prob = op.get('prob')
    if not isinstance(prob, (int, float)) or not 0 <= prob <= 1:
        raise ValueError(f'{where}: {op["type"]} prob must be in [0, 1], '
                         f'got {prob!r}')
    new = dict(OPS_1X[bare], prob=float(prob))
    if 'magnitude_range' in new:
        level = op.get('magnitude')
        if not isinstance(level, (int, float)) or \
                not 0 <= level <= TOTAL_LEVEL:
            raise ValueError(f'{where}: {op["type"]} magnitude is a level '
                             f'in [0, {TOTAL_LEVEL}], got {level!r}')
        new['magnitude_level'] = level
    return new


def translate_auto_augment(node: Dict[str, Any],
                           where: str) -> Dict[str, Any]:
    """``mmrazor.AutoAugmentV2`` as ``mmpretrain.AutoAugment``.

    Args:
        node (dict): ``dict(type='mmrazor.AutoAugmentV2', policies=[[op,
            ...], ...])``.
        where (str): Where it is, for errors.

    Returns:
        dict: ``dict(type='mmpretrain.AutoAugment', policies=[[...]],
        hparams=dict())``, every op translated by :func:`translate_op`.

    Raises:
        ValueError: Keys besides ``policies``, policies that are not lists
            of op lists, or an op refused by :func:`translate_op`.
    """
    extra = sorted(set(node) - {'type', 'policies', '_scope_'})
    if extra:
        raise ValueError(f'{where}: {node["type"]} has keys {extra}; 1.x '
                         'AutoAugmentV2 takes only policies')
    policies = node.get('policies')
    if not isinstance(policies, (list, tuple)) or not policies or not all(
            isinstance(sub, (list, tuple)) for sub in policies):
        raise ValueError(f'{where}: {node["type"]} policies must be a '
                         f'non-empty list of lists of ops, got {policies!r}')
    translated: List[List[Dict[str, Any]]] = [[
        translate_op(op, f'{where}.policies[{i}][{j}]')
        for j, op in enumerate(sub)
    ] for i, sub in enumerate(policies)]
    return dict(type='mmpretrain.AutoAugment', policies=translated,
                hparams=dict())


def translate_augments(node: Any, where: str, log: Counter) -> Any:
    """Replace every 1.x ``AutoAugmentV2`` (and any of its ops used on its
    own) below ``node``.

    Args:
        node (Any): A config value.
        where (str): Its key path, for errors.
        log (Counter): Renames done so far, added to.

    Returns:
        Any: ``node``, or what replaces it.
    """
    if isinstance(node, dict):
        bare = _bare_1x_name(node.get('type'))
        if bare == AUTO_AUGMENT_1X:
            new = translate_auto_augment(node, where)
            count = sum(len(sub) for sub in new['policies'])
            log[f'type {node["type"]} -> mmpretrain.AutoAugment ({count} '
                'ops: levels as magnitude_level / magnitude_range, '
                'extra_params dropped: no effect in 1.x)'] += 1
            return new
        if bare is not None:
            new = translate_op(node, where)
            log[f'type {node["type"]} -> {new["type"]}'] += 1
            return new
        for key in list(node):
            node[key] = translate_augments(node[key], f'{where}.{key}', log)
    elif isinstance(node, list):
        node[:] = [
            translate_augments(v, f'{where}[{i}]', log)
            for i, v in enumerate(node)
        ]
    return node


def translate_1x_augments(cfg: Any, log: Counter) -> None:
    """Apply :func:`translate_augments` to every top-level key of ``cfg``.

    Args:
        cfg (Config): Changed in place.
        log (Counter): Renames done so far, added to.
    """
    for key in list(cfg.keys()):
        cfg[key] = translate_augments(cfg[key], key, log)


__all__: Tuple[str, ...] = ('OPS_1X', 'REFUSED_1X', 'translate_op',
                            'translate_auto_augment', 'translate_augments',
                            'translate_1x_augments')
