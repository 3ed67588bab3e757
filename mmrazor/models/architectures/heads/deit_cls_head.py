"""``mmrazor.DeiTClsHead``: DeiT's head with a distillation token, trainable
by distillation (the DeiT config of MMRazor 1.x)."""
from typing import Any, List, Tuple

import torch
from mmpretrain.models.heads import DeiTClsHead as MMPretrainDeiTClsHead

from mmrazor.registry import MODELS


@MODELS.register_module()
class DeiTClsHead(MMPretrainDeiTClsHead):
    """The head of DeiT ("Training data-efficient image transformers &
    distillation through attention", Touvron et al., ICML 2021): a linear
    classifier of the class token (``layers.head``) and one of the
    distillation token (``layers.head_dist``).

    Training (``loss``): the class-token logits learn from the labels with
    the head's ``loss``; the distillation-token logits are computed for the
    distiller, which records ``head.layers.head_dist`` and trains it on the
    teacher's hard labels (DeiT's hard distillation,
    ``0.5 CE(Z_cls, y) + 0.5 CE(Z_dist, argmax Z_teacher)``, the weights
    being those of the two losses). Inference: the mean of both logits.
    mmpretrain's ``DeiTClsHead`` can only infer; this one trains, with its
    arguments (``num_classes``, ``in_channels``, ``hidden_dim``,
    ``act_cfg``, ``loss``, ``init_cfg``, ...).
    """

    def class_and_dist_logits(
            self, feats: Tuple[Any, ...]) -> Tuple[torch.Tensor, torch.Tensor]:
        """The logits of the class token and of the distillation token.

        Args:
            feats (tuple): The backbone outputs; the last one holds the
                class and distillation tokens.

        Returns:
            tuple[Tensor, Tensor]: Each ``(N, num_classes)``.
        """
        cls_token, dist_token = self.pre_logits(feats)
        return self.layers.head(cls_token), self.layers.head_dist(dist_token)

    def forward(self, feats: Tuple[Any, ...]) -> torch.Tensor:
        """The classification score: the mean of both tokens' logits.

        Args:
            feats (tuple): The backbone outputs.

        Returns:
            Tensor: ``(N, num_classes)``.
        """
        cls_score, dist_score = self.class_and_dist_logits(feats)
        return (cls_score + dist_score) / 2

    def loss(self, feats: Tuple[Any, ...], data_samples: List[Any],
             **kwargs: Any) -> dict:
        """The loss of the class-token logits with the labels; the
        distillation-token logits are computed for the distiller's
        recorder.

        Args:
            feats (tuple): The backbone outputs.
            data_samples (list[DataSample]): The annotations.
            **kwargs: Passed to the loss module.

        Returns:
            dict[str, Tensor]: The losses (and accuracy, if ``cal_acc``).
        """
        cls_score, _ = self.class_and_dist_logits(feats)
        return self._get_loss(cls_score, data_samples, **kwargs)
