# Retrain the backbone found by the DetNAS search from scratch and evaluate
# it (bbox mAP on the 200 validation canvases):
#   python tools/train.py configs/nas/detnas/detnas_shufflenet-s_retinanet_subnet_fashion-mnist-dense.py \
#       --cfg-options model.fix_subnet=work_dirs/detnas_shufflenet-s_retinanet_search_fashion-mnist-dense/best_subnet.yaml
_base_ = ['./detnas_shufflenet-s_retinanet_supernet_fashion-mnist-dense.py']

model = dict(
    fix_subnet='work_dirs/'
    'detnas_shufflenet-s_retinanet_search_fashion-mnist-dense/'
    'best_subnet.yaml',
    bn_training_mode=False)
find_unused_parameters = False
train_cfg = dict(val_interval=5)
