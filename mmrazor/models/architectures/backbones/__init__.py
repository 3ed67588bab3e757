"""Searchable backbones."""
from .darts_backbone import DartsBackbone
from .searchable_autoformer import AutoformerBackbone
from .searchable_mobilenet import SearchableMobileNet
from .searchable_mobilenet_v2 import SearchableMobileNetV2
from .searchable_mobilenet_v3 import AttentiveMobileNetV3
from .searchable_proxylessnas import ProxylessNAS
from .searchable_shufflenet_v2 import SearchableShuffleNetV2
from .wideresnet import WideResNet

__all__ = [
    'AttentiveMobileNetV3',
    'AutoformerBackbone',
    'DartsBackbone', 'ProxylessNAS', 'SearchableMobileNet',
    'SearchableMobileNetV2',
    'SearchableShuffleNetV2', 'WideResNet'
]
