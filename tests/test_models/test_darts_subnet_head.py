"""DartsSubnetClsHead: the main logits plus the auxiliary loss in training."""
import torch
import torch.nn.functional as F
from mmpretrain.structures import DataSample

from mmrazor.models import DartsSubnetClsHead


def samples(labels):
    return [DataSample().set_gt_label(int(y)) for y in labels]


def test_aux_loss_is_weighted_cross_entropy_of_its_own_linear():
    torch.manual_seed(0)
    head = DartsSubnetClsHead(
        num_classes=10,
        in_channels=12,
        aux_in_channels=6,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        aux_loss=dict(type='CrossEntropyLoss', loss_weight=0.4))
    # 12 * 10 + 10 (main) and 6 * 10 + 10 (auxiliary) parameters
    assert sum(p.numel() for p in head.parameters()) == 130 + 70
    aux, last = torch.randn(4, 6), torch.randn(4, 12)
    labels = torch.tensor([0, 3, 9, 3])
    losses = head.loss((aux, last), samples(labels))
    expected_main = F.cross_entropy(head.fc(last), labels)
    expected_aux = 0.4 * F.cross_entropy(head.aux_linear(aux), labels)
    torch.testing.assert_close(losses['loss'], expected_main)
    torch.testing.assert_close(losses['aux_loss'], expected_aux)
    # at test time the backbone gives no auxiliary features
    assert set(head.loss((last, ), samples(labels))) == {'loss'}
    predictions = head.predict((last, ))
    assert [p.pred_label.item() for p in predictions] == \
        head.fc(last).argmax(1).tolist()
