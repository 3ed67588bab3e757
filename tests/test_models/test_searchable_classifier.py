"""SearchableImageClassifier, DynamicInputResizer, DynamicLinearClsHead and
SqueezeMeanPoolingWithDropout, against computations written out with plain
torch functions."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmrazor.models.architectures import (DynamicLinearClsHead,
                                          SearchableImageClassifier,
                                          SqueezeMeanPoolingWithDropout)
from mmrazor.models.architectures.dynamic_ops import (DynamicConv2d,
                                                      DynamicInputResizer,
                                                      InputResizer)
from mmrazor.models.mutables import OneShotMutableChannel, OneShotMutableValue
from mmrazor.structures import export_fix_subnet, load_fix_subnet


class TinyBackbone(nn.Module):
    """One 3x3 conv whose width (4 or 8 channels) is searched; the width
    mutable is ``last_mutable_channels``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = DynamicConv2d(3, 8, 3, padding=1)
        self.last_mutable_channels = OneShotMutableChannel(
            8, [4, 8], candidate_mode='number', alias='backbone.width')
        self.conv.register_mutable_attr('out_channels',
                                        self.last_mutable_channels)

    def forward(self, x):
        return (self.conv(x), )


def build(**kwargs):
    torch.manual_seed(0)
    return SearchableImageClassifier(
        backbone=TinyBackbone(),
        neck=dict(type='mmrazor.SqueezeMeanPoolingWithDropout',
                  drop_ratio=0.2),
        head=dict(
            type='mmrazor.DynamicLinearClsHead',
            num_classes=5,
            in_channels=8,
            loss=dict(type='mmpretrain.CrossEntropyLoss')),
        input_resizer_cfg=dict(input_sizes=[[12, 12], [16, 16]]),
        connect_head=dict(
            connect_with_backbone='backbone.last_mutable_channels'),
        **kwargs).eval()


def by_hand(model, x, size, width):
    """The classifier's logits written out with torch functions."""
    x = F.interpolate(x, size=(size, size), mode='bicubic',
                      align_corners=False)
    conv = model.backbone.conv
    y = F.conv2d(x, conv.weight[:width], conv.bias[:width], padding=1)
    feat = y.mean(dim=(2, 3))
    fc = model.head.fc
    return feat @ fc.weight[:, :width].t() + fc.bias


def test_subnet_logits_match_hand_computation():
    model = build()
    x = torch.randn(2, 3, 20, 20)
    # the largest subnet by default: 16x16 input, 8 channels
    assert model.input_resizer.active_shape == (16, 16)
    torch.testing.assert_close(
        model(x, mode='tensor'), by_hand(model, x, 16, 8))
    resizer_mutable = model.input_resizer.mutable_attrs['shape']
    resizer_mutable.current_choice = [12, 12]
    model.backbone.last_mutable_channels.current_choice = 4
    torch.testing.assert_close(
        model(x, mode='tensor'), by_hand(model, x, 12, 4))


def test_subnet_file_keys_and_static_export():
    model = build()
    x = torch.randn(2, 3, 20, 20)
    load_fix_subnet(model, {'input_shape': [12, 12], 'backbone.width': 4})
    expected = by_hand(model, x, 12, 4)
    _, static = export_fix_subnet(model, slice_weight=True)
    static.eval()
    assert isinstance(static.input_resizer, InputResizer)
    assert static.input_resizer.shape == (12, 12)
    assert type(static.head.fc) is nn.Linear
    assert static.head.fc.in_features == 4
    torch.testing.assert_close(static(x, mode='tensor'), expected)


def test_unknown_input_size_is_refused():
    model = build()
    with pytest.raises(ValueError, match='13'):
        load_fix_subnet(model, {'input_shape': [13, 13], 'backbone.width': 4})


@pytest.mark.parametrize('cfg, match', [
    (dict(input_sizes=[]), 'input_sizes'),
    (dict(input_sizes=[[12, 12, 3]]), r'\[12, 12, 3\]'),
    (dict(input_sizes=[[12, 12]], mode='bicubic'), 'mode'),
    (dict(input_sizes=[[12, 12]], interpolation_type='cubic'), 'cubic'),
])
def test_bad_input_resizer_cfg_is_named(cfg, match):
    with pytest.raises(ValueError, match=match):
        SearchableImageClassifier(
            backbone=TinyBackbone(),
            neck=dict(type='mmrazor.SqueezeMeanPoolingWithDropout'),
            head=dict(type='mmrazor.DynamicLinearClsHead', num_classes=5,
                      in_channels=8),
            input_resizer_cfg=cfg)


def test_bad_connect_head_path_is_named():
    with pytest.raises(AttributeError, match='last_mutable'):
        SearchableImageClassifier(
            backbone=TinyBackbone(),
            head=dict(type='mmrazor.DynamicLinearClsHead', num_classes=5,
                      in_channels=8),
            connect_head=dict(connect_with_backbone='backbone.last_mutable'))


def test_head_follows_a_value_mutable():
    torch.manual_seed(0)
    head = DynamicLinearClsHead(num_classes=3, in_channels=6)
    width = OneShotMutableValue([2, 4, 6])
    head.connect_with_backbone(width)
    x = torch.randn(5, 6)
    width.current_choice = 4
    expected = x[:, :4] @ head.fc.weight[:, :4].t() + head.fc.bias
    torch.testing.assert_close(head((x[:, :4], )), expected)
    with pytest.raises(ValueError, match='up to 8'):
        DynamicLinearClsHead(num_classes=3, in_channels=6).\
            connect_with_backbone(OneShotMutableValue([4, 8]))


def test_squeeze_mean_pooling_with_dropout():
    neck = SqueezeMeanPoolingWithDropout(drop_ratio=0.5)
    x = torch.randn(2, 3, 4, 5)
    neck.eval()
    torch.testing.assert_close(neck((x, ))[0], x.sum((2, 3)) / 20)
    neck.train()
    torch.manual_seed(0)
    out = neck(x)
    kept = out != 0
    # inverted dropout: kept values are scaled by 1 / (1 - p)
    torch.testing.assert_close(out[kept], (x.sum((2, 3)) / 20 * 2)[kept])
    with pytest.raises(ValueError, match='drop_ratio'):
        SqueezeMeanPoolingWithDropout(drop_ratio=1.0)


def test_dynamic_input_resizer_static_form():
    resizer = DynamicInputResizer(interpolation_type='bilinear')
    shape = OneShotMutableValue([[8, 8], [10, 6]])
    resizer.register_mutable_attr('shape', shape)
    x = torch.randn(1, 2, 9, 9)
    shape.current_choice = [10, 6]
    expected = F.interpolate(x, size=(10, 6), mode='bilinear',
                             align_corners=False)
    torch.testing.assert_close(resizer(x), expected)
    torch.testing.assert_close(resizer.to_static_op()(x), expected)
    with pytest.raises(ValueError, match=r'\[8\]'):
        DynamicInputResizer().register_mutable_attr(
            'shape', OneShotMutableValue([[8], [9]]))
