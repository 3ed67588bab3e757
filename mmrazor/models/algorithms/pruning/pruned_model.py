"""``PrunedModel``: an architecture pruned to a channel config, to
fine-tune (masked or physically pruned) after ``tools/prune.py``."""
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

from torch import nn

from mmrazor.models.pruners import build_pruner
from mmrazor.registry import MODELS

ChannelCfg = Union[str, Path, Dict[str, Any]]


@MODELS.register_module(name='PrunedModel')
def pruned_model(architecture: Union[Dict[str, Any], nn.Module],
                 channel_cfg: ChannelCfg,
                 pruner: Optional[Dict[str, Any]] = None,
                 input_shape: Optional[Sequence[int]] = None,
                 checkpoint: Optional[str] = None,
                 deploy: bool = False,
                 data_preprocessor: Optional[Dict[str, Any]] = None,
                 init_cfg: Optional[dict] = None) -> nn.Module:
    """Build ``architecture`` and prune it to ``channel_cfg``.

    With ``deploy=False`` (default) the model keeps its shapes and the
    pruned channels are masked (the pruner's hooks stay installed): its
    checkpoints load into the original architecture, so that
    ``tools/deploy_subnet.py CONFIG --checkpoint CKPT --channel-cfg FILE``
    slices them and checks the deployed model against the masked one.
    With ``deploy=True`` the layers are sliced now: training is as fast as
    the pruned model, and checkpoints hold the pruned shapes.

    Args:
        architecture (dict | nn.Module): The model (config).
        channel_cfg (str | Path | dict): The subnet, as ``tools/prune.py``
            (``StructurePruner.export_subnet``) writes it, or its file.
        pruner (dict, optional): The pruner config the subnet was made
            with (its guard-rails and exclusions); the analysis must find
            the same groups.
        input_shape (Sequence[int], optional): Dummy input of the analysis.
        checkpoint (str, optional): Weights of the unpruned model, loaded
            before pruning (a ``state_dict`` or ``{'state_dict': ...}``,
            read with ``weights_only=True``); the model is then marked as
            initialised, so the Runner's ``init_weights`` keeps them. (Or
            give the Runner ``load_from`` instead.)
        deploy (bool): Slice the layers now. Defaults to False.
        data_preprocessor (dict, optional): The Runner's default for the
            architecture's ``data_preprocessor`` (used when the
            architecture config has none).
        init_cfg (dict, optional): Set as the model's ``init_cfg``.

    Returns:
        nn.Module: The architecture itself, pruned.
    """
    from mmrazor.models.pruners import load_channel_cfg
    from mmrazor.models.task_modules import load_weights
    if isinstance(architecture, nn.Module):
        model = architecture
    else:
        architecture = dict(architecture)
        if data_preprocessor is not None:
            architecture.setdefault('data_preprocessor', data_preprocessor)
        model = MODELS.build(architecture)
    if checkpoint is not None:
        load_weights(model, str(checkpoint))
        if hasattr(model, '_is_init'):
            model._is_init = True
    subnet = load_channel_cfg(str(channel_cfg)) if isinstance(
        channel_cfg, (str, Path)) else channel_cfg
    tool = build_pruner(pruner, input_shape)
    tool.prepare_from_supernet(model)
    tool.set_subnet(subnet)
    if deploy:
        tool.deploy_subnet(model)
    else:
        # the masking hooks need the pruner alive; not a sub-module, so it
        # adds nothing to the model's state_dict
        object.__setattr__(model, '_mmrazor_pruner', tool)
    if init_cfg is not None:
        model.init_cfg = init_cfg
    return model
