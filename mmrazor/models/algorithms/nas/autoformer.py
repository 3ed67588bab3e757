"""AutoFormer (Chen et al., ICCV 2021): a weight-sharing vision-transformer
supernet trained one random subnet per step, then searched."""
from typing import Optional, Union

from torch import nn

from mmrazor.registry import MODELS
from .spos import SPOS, SubnetLike


@MODELS.register_module()
class Autoformer(SPOS):
    """Train a weight-sharing supernet (e.g. ``AutoformerBackbone``: embed
    dims, depth, heads and MLP ratios searched) on one uniformly sampled
    subnet per step; search and export as :class:`SPOS`.

    Args:
        architecture (dict | nn.Module): The supernet classifier.
        mutator (dict | nn.Module): Decides every mutable. Defaults to
            ``NasMutator``.
        fix_subnet (str | dict, optional): Train and evaluate this subnet
            as a fixed model instead.
        data_preprocessor (dict, optional): Defaults to the architecture's.
        init_cfg (dict, optional): Initialisation config.
        **kwargs: Other arguments of :class:`SPOS`.
    """

    def __init__(self,
                 architecture: Union[dict, nn.Module],
                 mutator: Union[dict, nn.Module] = dict(type='NasMutator'),
                 fix_subnet: Optional[SubnetLike] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(
            architecture,
            mutator=mutator,
            fix_subnet=fix_subnet,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg,
            **kwargs)
