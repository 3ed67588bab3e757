# The AutoFormer-B search space (Chen et al., ICCV 2021), as MMRazor 1.x's
# AutoFormer configs define it: per block MLP ratio and heads (64 dims
# each), and the depth and embedding width of the whole network.
arch_setting = dict(
    mlp_ratios=[3.0, 3.5, 4.0],
    num_heads=[8, 9, 10],
    depth=[14, 15, 16],
    embed_dims=[528, 576, 624])

nas_backbone = dict(
    type='mmrazor.AutoformerBackbone', arch_setting=arch_setting)
