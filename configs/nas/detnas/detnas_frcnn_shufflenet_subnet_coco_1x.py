# Retrain the backbone found by the DetNAS search on COCO (1x schedule):
#   tools/dist_train.sh configs/nas/detnas/detnas_frcnn_shufflenet_subnet_coco_1x.py 8
# The subnet YAML defaults to the one the search config writes; give your
# own with --cfg-options model.fix_subnet=PATH. As in the DetNAS paper the
# backbone is best initialised from the searched subnet re-trained on
# ImageNet (configs/nas/spos/spos_shufflenetv2_subnet_8xb128_in1k.py with
# the same YAML): set model.architecture.backbone.init_cfg accordingly.
_base_ = ['./detnas_frcnn_shufflenet_supernet_coco_1x.py']

model = dict(
    fix_subnet='work_dirs/detnas_frcnn_shufflenet_search_coco_1x/'
    'best_subnet.yaml')
find_unused_parameters = False
