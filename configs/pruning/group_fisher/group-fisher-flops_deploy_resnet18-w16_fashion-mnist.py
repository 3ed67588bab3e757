# The Group Fisher pruned ResNet-18 for testing and deployment (MMRazor
# 1.x's deploy config): the pruned structure is built from the fix_subnet
# the pruning run wrote (flops_0.50_fix_subnet.json: 1.x unit name -> kept
# channels), the fine-tuned weights are loaded on top:
#
#   python tools/test.py configs/pruning/group_fisher/group-fisher-flops_deploy_resnet18-w16_fashion-mnist.py \
#       work_dirs/r18_gf_ft/epoch_3.pth \
#       --cfg-options model.fix_subnet=work_dirs/r18_gf/flops_0.50_fix_subnet.json
_base_ = ['../../vanilla/resnet18-w16_fashion-mnist.py']

fix_subnet = 'work_dirs/r18_gf/flops_0.50_fix_subnet.json'
divisor = 1

architecture = _base_.model

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='GroupFisherDeploySubModel',
    architecture=architecture,
    fix_subnet=fix_subnet,
    divisor=divisor,
    parse_cfg=dict(type='ChannelAnalyzer', demo_input=(1, 1, 28, 28)))
