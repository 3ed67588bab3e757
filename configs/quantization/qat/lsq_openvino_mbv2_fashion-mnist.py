# LSQ quantization-aware training (int8, fake-quant) of MobileNetV2 (width
# 0.5) on Fashion-MNIST: the recipe of lsq_openvino_resnet18-w16_fashion-mnist.py
# (the 1.x OpenVINO LSQ global_qconfig, 3 epochs at a constant lr 0.001, BN
# statistics frozen) with affine activations: with the 1.x symmetric quint8
# ones a ReLU6 output keeps only half of the 256 levels, which cost the
# MobileNetV2 of benchmarks/quantization_fashion_mnist.py 0.25 points of
# int8 LSQ top-1 (87.15 against 87.40, 3 seeds; docs/quantization.md).
#   python tools/train.py configs/vanilla/mobilenet-v2_fashion-mnist.py
#   python tools/train.py \
#       configs/quantization/qat/lsq_openvino_mbv2_fashion-mnist.py
# Another float checkpoint: --cfg-options model.float_checkpoint=/path/to/float.pth
_base_ = ['../../vanilla/mobilenet-v2_fashion-mnist.py']

float_checkpoint = 'work_dirs/mobilenet-v2_fashion-mnist/epoch_6.pth'

global_qconfig = dict(
    w_observer=dict(type='mmrazor.LSQPerChannelObserver'),
    a_observer=dict(type='mmrazor.LSQObserver'),
    w_fake_quant=dict(type='mmrazor.LearnableFakeQuantize'),
    a_fake_quant=dict(type='mmrazor.LearnableFakeQuantize'),
    w_qscheme=dict(
        qdtype='qint8', bit=8, is_symmetry=True, is_symmetric_range=True),
    a_qscheme=dict(qdtype='quint8', bit=8, is_symmetry=False),
)

model = dict(
    _delete_=True,
    type='mmrazor.MMArchitectureQuant',
    data_preprocessor={{_base_.data_preprocessor}},
    architecture=_base_.model,
    float_checkpoint=float_checkpoint,
    input_shapes=(1, 3, 32, 32),
    quantizer=dict(
        type='mmrazor.OpenVINOQuantizer',
        global_qconfig=global_qconfig,
        tracer=dict(
            type='mmrazor.CustomTracer',
            skipped_methods=[
                'mmcls.models.heads.ClsHead._get_loss',
                'mmcls.models.heads.ClsHead._get_predictions'
            ])))

# fine-tuning of a trained model: a small constant learning rate
optim_wrapper = dict(
    _delete_=True,
    optimizer=dict(type='SGD', lr=0.001, momentum=0.9, weight_decay=1e-4))
param_scheduler = dict(
    _delete_=True, type='ConstantLR', factor=1.0, by_epoch=True)

model_wrapper_cfg = dict(
    type='mmrazor.MMArchitectureQuantDDP',
    broadcast_buffers=False,
    find_unused_parameters=True)

# the BN statistics of the float model are kept from the first epoch on
train_cfg = dict(
    _delete_=True,
    type='mmrazor.LSQEpochBasedLoop',
    max_epochs=3,
    val_interval=1,
    freeze_bn_begin=1)
val_cfg = dict(_delete_=True, type='mmrazor.QATValLoop')

default_hooks = dict(sync=dict(type='SyncBuffersHook'))
