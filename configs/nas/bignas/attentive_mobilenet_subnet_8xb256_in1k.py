# A subnet of the BigNAS ImageNet supernet, tested with the supernet's
# weights (BigNAS needs no retraining): the subnet file fixes every searched
# choice, the supernet checkpoint loads as it is (the algorithm and its
# keys are the supernet's), and BatchNorm statistics are re-estimated on
# 16,384 training images before testing.
#   tools/dist_test.sh configs/nas/bignas/attentive_mobilenet_subnet_8xb256_in1k.py \
#       work_dirs/attentive_mobilenet_supernet_32xb64_in1k/epoch_360.pth 8 \
#       --cfg-options model.fix_subnet=work_dirs/attentive_mobilenet_search_8xb128_in1k/best_subnet.yaml
# The AttentiveNAS-A0 ... A6 subnet files that OpenMMLab published
# (ATTENTIVE_SUBNET_A*.yaml) can be given as model.fix_subnet as well.
_base_ = ['./attentive_mobilenet_supernet_32xb64_in1k.py']

model = dict(
    fix_subnet='work_dirs/attentive_mobilenet_search_8xb128_in1k/'
    'best_subnet.yaml')
model_wrapper_cfg = None
find_unused_parameters = False

# 256 images per batch, as the AttentiveNAS evaluation has it.
val_dataloader = dict(batch_size=256)
test_dataloader = val_dataloader
val_cfg = dict(type='CalibratedValLoop', calibrate_sample_num=16384)
test_cfg = dict(type='CalibratedValLoop', calibrate_sample_num=16384)

default_hooks = dict(checkpoint=None)
