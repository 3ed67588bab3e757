"""Quantizing models that freeze BN statistics while training (mmcv's
``norm_eval``, mmdet's frozen stages) and tracing with leaf functions, as
the 1.x detection PTQ configs need; checked against computations written
out here."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import fx, nn
from torch.ao.quantization import disable_fake_quant

from mmrazor.models.algorithms.quantization import MMArchitectureQuant
from mmrazor.models.quantizers import CustomTracer, OpenVINOQuantizer
from qconfigs import openvino_qconfig

#: The 1.x OpenVINO ``global_qconfig``.
QCONFIG = openvino_qconfig()


class NormEvalNet(BaseModel):
    """conv-bn-relu, then a BN of its own (not fused); every BN stays in
    eval mode when the model trains, as with ``norm_eval=True``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.bn_after_pool = nn.BatchNorm2d(4)
        for bn in (self.bn, self.bn_after_pool):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.data.uniform_(0.5, 1.5)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return self.bn_after_pool(
            self.pool(self.relu(self.bn(self.conv(inputs)))))

    def train(self, mode: bool = True) -> 'NormEvalNet':
        super().train(mode)
        if mode:
            for module in self.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self


def frozen_bn_output(model: NormEvalNet, x: torch.Tensor) -> torch.Tensor:
    """The float model's train-mode output: both BNs normalise with their
    running statistics."""
    bn, bn2 = model.bn, model.bn_after_pool
    y = F.conv2d(x, model.conv.weight, model.conv.bias)
    y = F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias,
                     False, 0.0, bn.eps)
    y = F.max_pool2d(F.relu(y), 2)
    return F.batch_norm(y, bn2.running_mean, bn2.running_var, bn2.weight,
                        bn2.bias, False, 0.0, bn2.eps)


def test_frozen_bn_is_fused_with_its_statistics_frozen():
    model = NormEvalNet().train()
    prepared = OpenVINOQuantizer(QCONFIG).prepare(model)
    fused = prepared.conv
    assert type(fused).__name__ == 'ConvBnReLU2d'
    assert fused.freeze_bn and not fused.bn.training
    # the float model's modes are as they were
    assert model.conv.training and not model.bn.training
    running_mean = model.bn.running_mean.clone()
    prepared.train()
    model.train()  # the unfused, shared BN: see the MMArchitectureQuant test
    prepared.apply(disable_fake_quant)
    x = torch.randn(2, 1, 8, 8)
    out = prepared(x)
    torch.testing.assert_close(model.bn.running_mean, running_mean)
    torch.testing.assert_close(out, frozen_bn_output(model, x))


def test_bn_in_train_mode_is_fused_unfrozen():
    model = NormEvalNet()
    nn.Module.train(model)  # every module training, BNs included
    prepared = OpenVINOQuantizer(QCONFIG).prepare(model)
    assert not prepared.conv.freeze_bn and prepared.conv.bn.training


def test_mm_architecture_keeps_norm_eval_in_train_mode():
    """Built from a model in eval mode: the qmodel is prepared with the
    model's own train mode (BN statistics frozen), the model's modes are
    restored, and ``train()`` leaves the shared, unfused BN in eval mode."""
    net = NormEvalNet().eval()
    algorithm = MMArchitectureQuant(
        architecture=net,
        quantizer=dict(type='mmrazor.OpenVINOQuantizer',
                       global_qconfig=QCONFIG),
        forward_modes=('tensor', ))
    assert not any(m.training for m in net.modules())
    qmodel = algorithm.qmodels['tensor']
    assert qmodel.conv.freeze_bn
    assert qmodel.bn_after_pool is net.bn_after_pool
    algorithm.train()
    assert qmodel.training and qmodel.conv.training
    assert not qmodel.conv.bn.training
    assert not net.bn_after_pool.training
    algorithm.apply(disable_fake_quant)
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(
        algorithm(x, mode='tensor'), frozen_bn_output(net, x))


def count_items(samples):
    """The number of items, counted by iterating (which FX cannot do on a
    traced argument, as mmdet's loops over data samples)."""
    return sum(1 for _ in samples)


class ScaledBySampleCount(nn.Module):

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x, samples):
        return self.conv(x) * count_items(samples)


def test_skipped_functions_are_leaf_calls():
    model = ScaledBySampleCount()
    with pytest.raises(fx.proxy.TraceError):
        CustomTracer().trace(model)
    tracer = CustomTracer(skipped_functions=[f'{__name__}.count_items'])
    graph = tracer.trace(model)
    assert count_items in [n.target for n in graph.nodes]
    assert globals()['count_items'] is count_items  # patch undone
    traced = fx.GraphModule(model, graph)
    x = torch.randn(1, 1, 5, 5)
    torch.testing.assert_close(traced(x, ['a', 'b', 'c']), model.conv(x) * 3)
    quantizer = OpenVINOQuantizer(
        QCONFIG,
        tracer=dict(
            type='mmrazor.CustomTracer',
            skipped_functions=[f'{__name__}.count_items']))
    quantizer.prepare(model)
    assert quantizer.unsupported_ops == []


@pytest.mark.parametrize('path', ['count_items', 42])
def test_bad_skipped_function_is_refused(path):
    with pytest.raises(ValueError, match='skipped_functions'):
        CustomTracer(skipped_functions=[path])
