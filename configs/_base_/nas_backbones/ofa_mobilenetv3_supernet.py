# The Once-for-All MobileNetV3 search space (Cai et al., ICLR 2020), as
# MMRazor 1.x's OFA configs define it: kernel sizes 3/5/7 (with OFA's kernel
# transformation), 2-4 blocks and expand ratios 3-6 per stage, chosen per
# block (fine-grained). Every entry is [min, max, step].
arch_setting = dict(
    kernel_size=[[3, 3, 1]] + [[3, 7, 2]] * 5,
    num_blocks=[[1, 1, 1]] + [[2, 4, 1]] * 5,
    expand_ratio=[[1, 1, 1]] + [[3, 6, 1]] * 5 + [[6, 6, 1]],
    num_out_channels=[[16, 16, 8], [16, 16, 8], [16, 24, 8], [24, 40, 8],
                      [40, 80, 8], [80, 112, 8], [112, 160, 8],
                      [1024, 1280, 256]])

input_resizer_cfg = dict(
    input_sizes=[[128, 128], [140, 140], [144, 144], [152, 152], [192, 192],
                 [204, 204], [224, 224], [256, 256]])

nas_backbone = dict(
    type='mmrazor.AttentiveMobileNetV3',
    arch_setting=arch_setting,
    out_indices=(6, ),
    stride_list=[1, 2, 2, 2, 1, 2],
    with_se_list=[False, False, True, False, True, True],
    act_cfg_list=[
        'HSwish', 'ReLU', 'ReLU', 'ReLU', 'HSwish', 'HSwish', 'HSwish',
        'HSwish', 'HSwish'
    ],
    conv_cfg=dict(type='mmrazor.OFAConv2d'),
    norm_cfg=dict(type='mmrazor.DynamicBatchNorm2d', momentum=0.1),
    fine_grained_mode=True,
    with_attentive_shortcut=False)
