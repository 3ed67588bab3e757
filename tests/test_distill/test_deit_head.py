"""mmrazor.DeiTClsHead: DeiT's head with a distillation token, trained by
distillation (the 1.x DeiT config)."""
import torch

from mmrazor.models.task_modules import ModuleOutputsRecorder
from mmrazor.registry import MODELS

NUM_CLASSES, DIM = 5, 6


def build_head():
    torch.manual_seed(0)
    head = MODELS.build(
        dict(
            type='mmrazor.DeiTClsHead',
            num_classes=NUM_CLASSES,
            in_channels=DIM,
            loss=dict(
                type='LabelSmoothLoss',
                label_smooth_val=0.1,
                mode='original',
                loss_weight=0.5)))
    for layer in (head.layers.head, head.layers.head_dist):
        torch.nn.init.normal_(layer.weight)
        torch.nn.init.normal_(layer.bias)
    return head


def tokens(n=4):
    torch.manual_seed(1)
    return torch.randn(n, DIM), torch.randn(n, DIM)


def linear(x, layer):
    return x @ layer.weight.T + layer.bias


def test_score_is_the_mean_of_both_tokens_logits():
    head = build_head().train()
    cls_token, dist_token = tokens()
    expected = (linear(cls_token, head.layers.head) +
                linear(dist_token, head.layers.head_dist)) / 2
    torch.testing.assert_close(head(((cls_token, dist_token), )), expected)
    from mmpretrain.structures import DataSample
    preds = head.predict(((cls_token, dist_token), ),
                         [DataSample() for _ in range(4)])
    assert [p.pred_label.item() for p in preds] == \
        expected.argmax(dim=1).tolist()


def test_loss_is_label_smoothing_on_the_class_token_and_dist_is_recorded():
    from mmpretrain.structures import DataSample
    head = build_head()
    cls_token, dist_token = tokens()
    labels = [0, 3, 4, 1]
    samples = [DataSample().set_gt_label(y) for y in labels]
    recorder = ModuleOutputsRecorder('layers.head_dist')
    recorder.prepare_from_model(head)
    with recorder:
        losses = head.loss(((cls_token, dist_token), ), samples)
    log_p = torch.log_softmax(linear(cls_token, head.layers.head), dim=1)
    expected = 0
    for k, y in enumerate(labels):
        target = torch.full((NUM_CLASSES, ), 0.1 / NUM_CLASSES)
        target[y] += 0.9
        expected = expected - (target * log_p[k]).sum()
    torch.testing.assert_close(losses['loss'], 0.5 * expected / 4)
    torch.testing.assert_close(
        recorder.get_record_data(),
        linear(dist_token, head.layers.head_dist))
    # the class-token loss does not reach the distillation head
    losses['loss'].backward()
    assert head.layers.head_dist.weight.grad is None
    assert head.layers.head.weight.grad.abs().sum() > 0
