# The AttentiveNAS MobileNetV3 search space (Wang et al., CVPR 2021), as
# MMRazor 1.x's BigNAS configs define it. Every entry is [min, max, step];
# the lists run over the stages (first conv, 7 stages, last layer).
arch_setting = dict(
    kernel_size=[[3, 5, 2]] * 7,
    num_blocks=[[1, 2, 1], [3, 5, 1], [3, 6, 1], [3, 6, 1], [3, 8, 1],
                [3, 8, 1], [1, 2, 1]],
    expand_ratio=[[1, 1, 1], [4, 6, 1], [4, 6, 1], [4, 6, 1], [4, 6, 1],
                  [6, 6, 1], [6, 6, 1], [6, 6, 1]],
    num_out_channels=[[16, 24, 8], [16, 24, 8], [24, 32, 8], [32, 40, 8],
                      [64, 72, 8], [112, 128, 8], [192, 216, 8],
                      [216, 224, 8], [1792, 1984, 192]])

# the input resolution is searched too
input_resizer_cfg = dict(
    input_sizes=[[192, 192], [224, 224], [256, 256], [288, 288]])

nas_backbone = dict(
    type='mmrazor.AttentiveMobileNetV3',
    arch_setting=arch_setting,
    norm_cfg=dict(type='mmrazor.DynamicBatchNorm2d', momentum=0.0))
