"""Learned weight rounding (AdaRound) of a calibrated fake-quant model.

Rounding every weight to its nearest grid point minimises each weight's
own error, not the error of the layer's output. AdaRound (Nagel et al.,
"Up or Down? Adaptive Rounding for Post-Training Quantization", ICML 2020)
chooses, per weight, between rounding down and up so that the layer's
output on the calibration data stays close to the float model's: a
continuous relaxation ``h(V) = clamp(sigmoid(V) * (zeta - gamma) + gamma,
0, 1)`` is added to ``floor(W / s)`` and ``V`` minimises

    ||act(layer(x_q, s * (floor(W / s) + h(V)))) - act(layer_fp(x_fp))||^2
    + reg_weight * sum(1 - |2 h(V) - 1| ** beta)

with ``x_q`` the layer's input in the quantized model (the layers before it
already rounded) and ``x_fp`` its input in the float model (fake-quants
off, the rounded layers' float weights put back); the second term,
with ``beta`` falling from 20 to 2, drives every ``h`` to 0 or 1. The
layers are rounded one after the other in the order the data reaches them;
the chosen grid points are written back as weights that the layer's own
weight fake-quant maps onto exactly them, so the fake-quant model, its
checkpoint and its ONNX export all carry the learned rounding.
"""
import math
from typing import Any, Callable, Dict, List, Optional

import torch
from mmengine import dist
from mmengine.logging import MMLogger
from torch import nn
from torch.ao.quantization import FakeQuantizeBase
from torch.nn import functional as F

from .export import (CONV_BN_MODULES, WEIGHT_MODULES, bn_fold_factor,
                     fake_quant_params, fold_conv_bn)
from .layer_hooks import is_weight_layer, run_with_pre_hooks

#: The stretch of the rectified sigmoid (the paper's zeta and gamma).
ZETA, GAMMA = 1.1, -0.1


def _has_relu(module: nn.Module) -> bool:
    table = CONV_BN_MODULES if type(module) in CONV_BN_MODULES \
        else WEIGHT_MODULES
    return table[type(module)]


def _float_weight_and_bias(module: nn.Module):
    """The weight and bias the layer computes with (BN folded in; a BN
    channel with ``gamma = 0`` gives zero weights, whatever their
    rounding)."""
    if type(module) in CONV_BN_MODULES:
        return fold_conv_bn(module, zero_gamma_ok=True)
    bias = module.bias.detach() if module.bias is not None else None
    return module.weight.detach(), bias


def _apply(module: nn.Module, x: torch.Tensor, weight: torch.Tensor,
           bias: Optional[torch.Tensor]) -> torch.Tensor:
    """The layer's output for ``weight`` / ``bias`` (ReLU included where
    the module has one)."""
    if weight.dim() == 2:
        out = F.linear(x, weight, bias)
    else:
        out = module._conv_forward(x, weight, bias)
    return F.relu(out) if _has_relu(module) else out


def _per_channel(values: torch.Tensor, ch_axis: Optional[int],
                 dims: int) -> torch.Tensor:
    """``values`` shaped to broadcast along ``ch_axis`` of a ``dims``-D
    weight (a scalar for per-tensor)."""
    if ch_axis is None:
        return values
    shape = [1] * dims
    shape[ch_axis] = -1
    return values.reshape(shape)


def _soft_rounding(v: torch.Tensor) -> torch.Tensor:
    return torch.clamp(torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA, 0, 1)


def _rounding_regulariser(h: torch.Tensor, beta: float) -> torch.Tensor:
    return (1 - (2 * h - 1).abs().pow(beta)).sum()


def _fake_quants_enabled(model: nn.Module, enabled: bool) -> Dict:
    """Switch every fake-quant of ``model`` on or off; returns the previous
    states to restore."""
    before = {}
    for module in model.modules():
        if isinstance(module, FakeQuantizeBase):
            before[module] = bool(module.fake_quant_enabled[0])
            if enabled:
                module.enable_fake_quant()
            else:
                module.disable_fake_quant()
    return before


def _restore(before: Dict) -> None:
    for module, enabled in before.items():
        if enabled:
            module.enable_fake_quant()
        else:
            module.disable_fake_quant()


def _swap_weights(weights: Dict[nn.Module, torch.Tensor]) -> None:
    """Exchange each layer's weight data with the tensor ``weights`` holds
    (no copies: the tensors change places)."""
    for module, other in list(weights.items()):
        weights[module] = module.weight.data
        module.weight.data = other


def _layer_inputs(model: nn.Module, module: nn.Module,
                  run_batches: Callable[[], Any], quantized: bool,
                  float_weights: Dict[nn.Module, torch.Tensor]):
    """The inputs ``module`` receives over ``run_batches``, in the
    fake-quant model (``quantized``) or in the float one (fake-quants off,
    the layers rounded so far given back their ``float_weights``)."""
    inputs: List[torch.Tensor] = []
    before = _fake_quants_enabled(model, quantized)
    if not quantized:
        _swap_weights(float_weights)
    try:
        run_with_pre_hooks(
            {module: lambda mod, args: inputs.append(args[0].detach())},
            run_batches)
    finally:
        if not quantized:
            _swap_weights(float_weights)
        _restore(before)
    return torch.cat(inputs) if inputs else None


def _layer_order(model: nn.Module, run_batches: Callable[[], Any]) -> List:
    """The quantized layers of ``model`` in the order data first reaches
    them, as ``(name, module)`` (those whose weight fake-quant is off stay
    float and are left out)."""
    names = {
        module: name
        for name, module in model.named_modules()
        if is_weight_layer(module)
        and bool(module.weight_fake_quant.fake_quant_enabled[0])
    }
    order: Dict[nn.Module, str] = {}  # insertion order: the data's

    def first_call(module: nn.Module, inputs: tuple) -> None:
        order.setdefault(module, names[module])

    run_with_pre_hooks({module: first_call
                        for module in names}, run_batches)
    return [(name, module) for module, name in order.items()]


def _round_layer(module: nn.Module, x_q: torch.Tensor, target: torch.Tensor,
                 iters: int, batch_size: int, lr: float, reg_weight: float,
                 beta: tuple, warmup: float,
                 generator: torch.Generator) -> float:
    """Learn the rounding of ``module``'s weight and write it back.

    Returns:
        float: The fraction of weights whose relaxed rounding ``h`` was
        still between 0.01 and 0.99 at the end (rounded at 0.5 then).
    """
    weight, bias = _float_weight_and_bias(module)
    scale, zero_point, quant_min, quant_max, ch_axis = fake_quant_params(
        module.weight_fake_quant)
    scale = _per_channel(scale.to(weight), ch_axis, weight.dim())
    zero_point = _per_channel(zero_point.to(weight), ch_axis, weight.dim())
    floor = torch.floor(weight / scale)
    rest = (weight / scale - floor).clamp(1e-4, 1 - 1e-4)
    # h(v) == rest at the start: rounding as the float weight lies
    v = -torch.log((ZETA - GAMMA) / (rest - GAMMA) - 1)
    v = nn.Parameter(v.clone())
    optimizer = torch.optim.Adam([v], lr=lr)
    start = int(warmup * iters)
    world = dist.get_world_size()
    for step in range(iters):
        rows = torch.randint(
            0, x_q.shape[0], (min(batch_size, x_q.shape[0]), ),
            generator=generator)
        levels = torch.clamp(floor + _soft_rounding(v) + zero_point,
                             quant_min, quant_max) - zero_point
        out = _apply(module, x_q[rows], scale * levels, bias)
        loss = (out - target[rows]).pow(2).sum(1).mean()
        if step >= start:
            progress = (step - start) / max(iters - start, 1)
            beta_now = beta[1] + 0.5 * (beta[0] - beta[1]) * (
                1 + math.cos(progress * math.pi))
            loss = loss + reg_weight * _rounding_regulariser(
                _soft_rounding(v), beta_now)
        optimizer.zero_grad()
        loss.backward()
        if world > 1:
            dist.all_reduce(v.grad, op='mean')
        optimizer.step()
    with torch.no_grad():
        soft = _soft_rounding(v)
        undecided = float(((soft > 0.01) & (soft < 0.99)).float().mean())
        levels = torch.clamp(floor + (v >= 0).to(floor) + zero_point,
                             quant_min, quant_max) - zero_point
        quantized = scale * levels
        if type(module) in CONV_BN_MODULES:
            factor = _per_channel(bn_fold_factor(module), 0, weight.dim())
            # channels with gamma = 0 compute zeros: their weights stay
            quantized = torch.where(factor != 0, quantized / factor,
                                    module.weight)
        module.weight.copy_(quantized.to(module.weight.dtype))
    return undecided


def learn_rounding(model: nn.Module,
                   run_batches: Callable[[], Any],
                   iters: int = 500,
                   batch_size: int = 32,
                   lr: float = 1e-2,
                   reg_weight: float = 0.01,
                   beta: tuple = (20., 2.),
                   warmup: float = 0.2,
                   seed: int = 0) -> int:
    """Learn how every quantized conv / linear of a calibrated fake-quant
    model rounds its weights (AdaRound), in place.

    Layers are rounded in the order the data reaches them. For each, two
    passes of ``run_batches`` record its input with all fake-quants off
    (the float model: the target is the float layer's output there) and
    on (the quantized model, with the layers before it already rounded);
    ``iters`` Adam steps on random mini-batches of those inputs then learn
    the rounding (module docstring). The weight written back is the chosen
    grid point (divided by the BN factor for a conv-bn), which the layer's
    weight fake-quant, whose scale stays, maps onto itself. In a
    distributed run the gradients are averaged over the processes, so all
    of them learn the same rounding from all their data.

    Args:
        model (nn.Module): A calibrated prepared model (observers off,
            fake-quants on) or an :class:`MMArchitectureQuant`.
        run_batches (Callable[[], Any]): Runs the calibration data through
            the model once (its inputs are kept in memory, one layer at a
            time). Every call must run the same images in the same order
            (the float and the quantized pass of a layer are paired): no
            random augmentation; mmengine's ``DefaultSampler`` repeats its
            order while its epoch stays.
        iters (int): Optimisation steps per layer. Defaults to 500 (the
            paper takes 10,000 at ``lr=1e-3`` on a GPU; 500 at ``1e-2``
            leave a median 0.2% of a layer's weights undecided on the
            Fashion-MNIST models, about a minute per model on one CPU
            thread).
        batch_size (int): Samples per step. Defaults to 32.
        lr (float): Adam's learning rate. Defaults to 1e-2.
        reg_weight (float): Weight of the rounding regulariser. Defaults
            to 0.01.
        beta (tuple): The regulariser's exponent at the end of the warm-up
            and at the last step (cosine decay). Defaults to (20, 2).
        warmup (float): Fraction of the steps without the regulariser.
            Defaults to 0.2.
        seed (int): Seed of the mini-batch sampling. Defaults to 0.

    Returns:
        int: The number of layers rounded (those that saw data).

    Raises:
        ValueError: ``model`` has no quantized conv / linear, or a bad
            argument.
    """
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise ValueError(f'learn_rounding: iters must be a positive int, '
                         f'got {iters!r}')
    if isinstance(batch_size, bool) or not isinstance(
            batch_size, int) or batch_size < 1:
        raise ValueError('learn_rounding: batch_size must be a positive '
                         f'int, got {batch_size!r}')
    if not 0 <= warmup < 1:
        raise ValueError(f'learn_rounding: warmup must be in [0, 1), got '
                         f'{warmup!r}')
    if len(beta) != 2 or min(beta) <= 0:
        raise ValueError('learn_rounding: beta must be two positive '
                         f'numbers (start, end), got {beta!r}')
    if not any(is_weight_layer(module) for module in model.modules()):
        raise ValueError('learn_rounding: the model has no quantized conv '
                         'or linear layer (is it prepared?)')
    was_training = model.training
    model.eval()
    order = _layer_order(model, run_batches)
    logger = MMLogger.get_current_instance()
    generator = torch.Generator().manual_seed(seed)
    # the float weights of the layers rounded so far
    float_weights: Dict[nn.Module, torch.Tensor] = {}
    try:
        for index, (name, module) in enumerate(order):
            x_fp = _layer_inputs(model, module, run_batches, False,
                                 float_weights)
            weight, bias = _float_weight_and_bias(module)
            with torch.no_grad():
                target = _apply(module, x_fp, weight, bias)
            del x_fp
            x_q = _layer_inputs(model, module, run_batches, True,
                                float_weights)
            float_weights[module] = module.weight.detach().clone()
            with torch.enable_grad():
                undecided = _round_layer(module, x_q, target, iters,
                                         batch_size, lr, reg_weight,
                                         tuple(beta), warmup, generator)
            logger.info(f'learn_rounding: {index + 1}/{len(order)} {name} '
                        f'(undecided at the end: {100 * undecided:.1f}%)')
    finally:
        model.train(was_training)
    return len(order)
