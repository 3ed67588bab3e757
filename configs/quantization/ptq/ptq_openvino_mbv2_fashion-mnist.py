# Post-training int8 quantization (fake-quant) of MobileNetV2 (width 0.5) on
# Fashion-MNIST, with the 1.x OpenVINO global_qconfig
# (configs/quantization/ptq/base/ptq_openvino_mbv2_8xb32_in1k_calib32xb32
# of the 1.x toolbox):
#   python tools/train.py configs/vanilla/mobilenet-v2_fashion-mnist.py
#   python tools/ptq.py configs/quantization/ptq/ptq_openvino_mbv2_fashion-mnist.py \
#       work_dirs/mobilenet-v2_fashion-mnist/epoch_6.pth
# For onnxruntime use affine activations (ReLU6 outputs then get zero point
# 0 and the conv-bn-ReLU6 runs as one QLinearConv, docs/quantization.md):
#   --cfg-options model.quantizer.global_qconfig.a_qscheme.is_symmetry=False
_base_ = ['../../vanilla/mobilenet-v2_fashion-mnist.py']

calibrate_dataloader = dict(
    batch_size=32,
    num_workers=0,
    dataset=dict(
        type='FashionMNISTAsCIFAR',
        data_root={{_base_.data_root}},
        split='train',
        pipeline=[dict(type='mmpretrain.PackInputs')]),
    sampler=dict(type='DefaultSampler', shuffle=True),
)

test_cfg = dict(
    type='mmrazor.PTQLoop',
    calibrate_dataloader=calibrate_dataloader,
    calibrate_steps=8,
)

global_qconfig = dict(
    w_observer=dict(type='mmrazor.PerChannelMinMaxObserver'),
    a_observer=dict(type='mmrazor.MovingAverageMinMaxObserver'),
    w_fake_quant=dict(type='mmrazor.FakeQuantize'),
    a_fake_quant=dict(type='mmrazor.FakeQuantize'),
    w_qscheme=dict(
        qdtype='qint8', bit=8, is_symmetry=True, is_symmetric_range=True),
    a_qscheme=dict(
        qdtype='quint8', bit=8, is_symmetry=True, averaging_constant=0.1),
)

# tools/ptq.py CONFIG CHECKPOINT sets it to CHECKPOINT
float_checkpoint = None

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

model_wrapper_cfg = dict(type='mmrazor.MMArchitectureQuantDDP')
