"""Tiny classifiers and batches shared by the distillation tests."""
import copy

import torch

DATA_PREPROCESSOR = dict(
    type='mmpretrain.ClsDataPreprocessor',
    num_classes=10,
    mean=[72.94],
    std=[90.02],
    to_rgb=False)


def classifier_cfg(width: int, scope: str = 'mmcls') -> dict:
    """A CIFAR-style ResNet-18 classifier for 1-channel images."""
    return dict(
        type=f'{scope}.ImageClassifier',
        data_preprocessor=copy.deepcopy(DATA_PREPROCESSOR),
        backbone=dict(
            type='ResNet_CIFAR',
            depth=18,
            in_channels=1,
            stem_channels=width,
            base_channels=width,
            out_indices=(3, ),
            style='pytorch'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=10,
            in_channels=8 * width,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            topk=(1, )))


def kd_components():
    return [
        dict(
            student_module='head.fc',
            teacher_module='head.fc',
            losses=[dict(type='KLDivergence', name='loss_kd', tau=4)]),
        dict(
            student_module='backbone.layer3',
            teacher_module='backbone.layer3',
            align_module=dict(
                type='conv2d', student_channels=8, teacher_channels=16),
            losses=[dict(type='L2Loss', name='loss_fitnet')]),
    ]


def distill_cfg(**distiller_kwargs) -> dict:
    distiller = dict(
        type='SingleTeacherDistiller',
        teacher=classifier_cfg(4, scope='mmpretrain'),
        components=kd_components())
    distiller.update(distiller_kwargs)
    return dict(
        type='GeneralDistill',
        architecture=dict(type='MMClsArchitecture', model=classifier_cfg(2)),
        distiller=distiller)


def make_batch(n: int = 8, size: int = 12, seed: int = 0) -> dict:
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(seed)
    return dict(
        inputs=[
            torch.randint(
                0, 256, (1, size, size), generator=g, dtype=torch.uint8)
            for _ in range(n)
        ],
        data_samples=[DataSample().set_gt_label(i % 10) for i in range(n)])
