# LSQ quantization-aware training with 4-bit weights and 8-bit activations
# (fake-quant, AcademicQuantizer) of the quickstart ResNet-18 (width 16) on
# Fashion-MNIST, with the recipe of lsq_openvino_resnet18-w16_fashion-mnist.py
# but for two choices:
# * the weight step sizes start at the per-channel min-max ones
#   (max|w| / 7) instead of LSQ's 2 * mean|w| / sqrt(7), which for
#   Gaussian weights is about 0.6 sigma, a range of +-4.2 sigma over the 15
#   levels; they are learned afterwards either way (one epoch on the
#   Fashion-MNIST ResNet-18: 87.53 against 86.72 top-1 over 3 seeds, fp32
#   87.75; docs/quantization.md);
# * affine activations (zero point from the observer's min / max), which
#   use all 256 levels after a ReLU.
#   python tools/train.py configs/vanilla/resnet18-w16_fashion-mnist.py
#   python tools/train.py \
#       configs/quantization/qat/lsq_academic-w4a8_resnet18-w16_fashion-mnist.py
_base_ = ['./lsq_openvino_resnet18-w16_fashion-mnist.py']

global_qconfig = dict(
    w_observer=dict(type='mmrazor.PerChannelMinMaxObserver'),
    a_observer=dict(type='mmrazor.LSQObserver'),
    w_fake_quant=dict(type='mmrazor.LearnableFakeQuantize'),
    a_fake_quant=dict(type='mmrazor.LearnableFakeQuantize'),
    w_qscheme=dict(
        qdtype='qint8', bit=4, is_symmetry=True, is_symmetric_range=True),
    a_qscheme=dict(qdtype='quint8', bit=8, is_symmetry=False),
)

model = dict(
    quantizer=dict(
        type='mmrazor.AcademicQuantizer', global_qconfig=global_qconfig))
