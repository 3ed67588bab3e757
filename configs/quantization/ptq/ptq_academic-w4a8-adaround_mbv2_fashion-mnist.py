# Post-training quantization of MobileNetV2 (width 0.5) on Fashion-MNIST to
# 4-bit weights / 8-bit activations (fake-quant, AcademicQuantizer) with
# learned rounding (AdaRound, PTQLoop's learned_rounding): no training, and
# within about 0.1 point of fp32 where rounding to nearest loses 3-4 points
# (docs/quantization.md, "Learned rounding"):
#   python tools/train.py configs/vanilla/mobilenet-v2_fashion-mnist.py
#   python tools/ptq.py configs/quantization/ptq/ptq_academic-w4a8-adaround_mbv2_fashion-mnist.py \
#       work_dirs/mobilenet-v2_fashion-mnist/epoch_6.pth
_base_ = ['./ptq_openvino_mbv2_fashion-mnist.py']

# learn_rounding's arguments: 500 Adam steps per layer at lr 0.01
test_cfg = dict(learned_rounding=dict(iters=500, lr=1e-2))

model = dict(
    quantizer=dict(
        type='mmrazor.AcademicQuantizer',
        global_qconfig=dict(
            w_qscheme=dict(
                qdtype='qint8', bit=4, is_symmetry=True,
                is_symmetric_range=True),
            # affine activations: a ReLU6 output uses all 256 levels
            a_qscheme=dict(
                qdtype='quint8', bit=8, is_symmetry=False,
                averaging_constant=0.1))))
