"""The 1.x configurable-distillation surface: recorders, RecorderManager,
ConfigurableDistiller, ConvModuleConnector, SingleTeacherDistill and the
original 1.x KD config trained through ``tools/train.py``."""
import os.path as osp
import sys
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from distill_helpers import classifier_cfg, make_batch
from mmrazor.models import ConfigurableDistiller, SingleTeacherDistill
from mmrazor.models.task_modules import (FunctionInputsRecorder,
                                         FunctionOutputsRecorder,
                                         MethodInputsRecorder,
                                         MethodOutputsRecorder,
                                         ModuleInputsRecorder,
                                         ModuleOutputsRecorder,
                                         ParameterRecorder, RecorderManager)
from mmrazor.registry import TASK_UTILS


class ToyModel(nn.Module):
    """``conv1`` runs twice per forward, ``conv2`` once."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 1)
        self.conv2 = nn.Conv2d(2, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x) + self.conv1(x + 1))


def no_hooks(module: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks
               for m in module.modules())


@pytest.fixture
def toy_module(monkeypatch) -> types.ModuleType:
    """An importable module ``razor_toy_funcs`` with a function, a caller
    of it and classes with methods."""
    module = types.ModuleType('razor_toy_funcs')
    exec(
        'def scale(x, factor=2):\n'
        '    return x * factor\n'
        'def caller(x):\n'
        '    return scale(x, factor=3) + scale(x)\n'
        'class Base:\n'
        '    def double(self, x):\n'
        '        return 2 * x\n'
        'class Child(Base):\n'
        '    pass\n', module.__dict__)
    monkeypatch.setitem(sys.modules, 'razor_toy_funcs', module)
    return module


# -------------------------------------------------------------- recorders
@pytest.mark.parametrize('name,cls', [
    ('ModuleOutputs', ModuleOutputsRecorder),
    ('ModuleInputs', ModuleInputsRecorder),
    ('FunctionOutputs', FunctionOutputsRecorder),
    ('FunctionInputs', FunctionInputsRecorder),
    ('MethodOutputs', MethodOutputsRecorder),
    ('MethodInputs', MethodInputsRecorder),
    ('Parameter', ParameterRecorder),
    ('ModuleOutputsRecorder', ModuleOutputsRecorder),
])
def test_recorders_registered_under_1x_names(name, cls):
    assert type(TASK_UTILS.build(dict(type=name, source='a.b'))) is cls


def test_module_outputs_equal_the_module_called_by_hand():
    model, x = ToyModel(), torch.randn(2, 1, 3, 3)
    recorder = ModuleOutputsRecorder('conv1')
    recorder.prepare_from_model(model)
    with recorder:
        model(x)
    assert len(recorder.data_buffer) == 2
    torch.testing.assert_close(recorder.get_record_data(0), model.conv1(x))
    torch.testing.assert_close(
        recorder.get_record_data(record_idx=1), model.conv1(x + 1))


def test_module_outputs_of_a_classifier_stage():
    from mmrazor.registry import MODELS
    model = MODELS.build(classifier_cfg(2, scope='mmpretrain')).eval()
    x = torch.randn(2, 1, 12, 12)
    outputs = ModuleOutputsRecorder('backbone.layer1')
    inputs = ModuleInputsRecorder('backbone.layer1')
    for recorder in (outputs, inputs):
        recorder.prepare_from_model(model)
    with outputs, inputs, torch.no_grad():
        model(x, mode='tensor')
        expected = model.backbone.layer1(inputs.get_record_data(data_idx=0))
        stem = model.backbone.relu(
            model.backbone.norm1(model.backbone.conv1(x)))
    torch.testing.assert_close(inputs.get_record_data(data_idx=0), stem)
    torch.testing.assert_close(outputs.get_record_data(), expected)


def test_module_inputs_are_the_positional_arguments():
    model, x = ToyModel(), torch.randn(1, 1, 2, 2)
    recorder = ModuleInputsRecorder('conv2')
    recorder.prepare_from_model(model)
    with recorder:
        model(x)
    record = recorder.get_record_data()
    assert isinstance(record, tuple) and len(record) == 1
    torch.testing.assert_close(
        recorder.get_record_data(data_idx=0),
        model.conv1(x) + model.conv1(x + 1))


def test_recorders_record_only_inside_the_block():
    model, x = ToyModel(), torch.randn(1, 1, 2, 2)
    manager = RecorderManager(
        dict(
            out=dict(type='ModuleOutputs', source='conv1'),
            inp=dict(type='ModuleInputs', source='conv2')))
    manager.prepare_from_model(model)
    model(x)
    assert no_hooks(model)
    with manager:
        assert not no_hooks(model)
        model(x)
    assert no_hooks(model)
    model(x)
    assert len(manager.get_recorder('out').data_buffer) == 2
    # a new block starts a new recording
    with manager:
        model(x)
    assert len(manager.get_recorder('out').data_buffer) == 2
    with pytest.raises(ZeroDivisionError), manager:
        model(x)
        1 / 0
    assert no_hooks(model)


def test_function_recorders_patch_and_restore(toy_module):
    original = toy_module.scale
    outputs = FunctionOutputsRecorder('razor_toy_funcs.scale')
    inputs = FunctionInputsRecorder('razor_toy_funcs.scale')
    manager = RecorderManager(dict(o=outputs, i=inputs))
    manager.prepare_from_model()
    x = torch.tensor([1., 2.])
    toy_module.caller(x)
    with manager:
        assert toy_module.scale is not original
        result = toy_module.caller(x)
    assert toy_module.scale is original
    toy_module.caller(x)
    assert len(outputs.data_buffer) == 2
    torch.testing.assert_close(outputs.get_record_data(0), x * 3)
    torch.testing.assert_close(outputs.get_record_data(1), x * 2)
    torch.testing.assert_close(result, x * 5)
    # inputs in the order of the function's parameters
    assert inputs.get_record_data(0)[1] == 3
    assert inputs.get_record_data(0, data_idx=0) is x
    assert inputs.get_record_data(1) == (x, )


def test_method_recorders_patch_the_class_and_restore(toy_module):
    outputs = MethodOutputsRecorder('razor_toy_funcs.Child.double')
    inputs = MethodInputsRecorder('razor_toy_funcs.Child.double')
    for recorder in (outputs, inputs):
        recorder.prepare_from_model(None)
    child = toy_module.Child()
    with outputs, inputs:
        child.double(4)
        child.double(x=5)
    assert outputs.data_buffer == [8, 10]
    assert inputs.data_buffer == [(4, ), (5, )]
    # the inherited method is not left behind on Child
    assert 'double' not in vars(toy_module.Child)
    assert child.double(1) == 2 and len(outputs.data_buffer) == 2


def test_function_recorder_bad_source_names_it():
    recorder = FunctionOutputsRecorder('razor_no_such_pkg.module.func')
    with pytest.raises(ImportError, match='razor_no_such_pkg'):
        recorder.prepare_from_model()
    recorder = FunctionOutputsRecorder('torch.nn.functional.no_such_func')
    with pytest.raises(AttributeError, match='no_such_func'):
        recorder.prepare_from_model()


def test_parameter_recorder_records_the_parameter():
    model = ToyModel()
    recorder = ParameterRecorder('conv1.weight')
    recorder.prepare_from_model(model)
    with recorder:
        pass
    assert recorder.get_record_data() is model.conv1.weight
    with pytest.raises(KeyError, match='conv1.wieght'):
        ParameterRecorder('conv1.wieght').prepare_from_model(model)


def test_record_data_errors_are_clear():
    model = ToyModel()
    recorder = ModuleOutputsRecorder('conv1')
    with pytest.raises(RuntimeError, match='not prepared'):
        with recorder:
            pass
    recorder.prepare_from_model(model)
    with pytest.raises(RuntimeError, match='recorded nothing'):
        recorder.get_record_data()
    with recorder:
        model(torch.randn(1, 1, 2, 2))
    with pytest.raises(IndexError, match='recorded 2 time'):
        recorder.get_record_data(record_idx=2)
    with pytest.raises(TypeError, match='data_idx=0'):
        recorder.get_record_data(data_idx=0)
    with pytest.raises(KeyError, match="'conv9'"):
        ModuleOutputsRecorder('conv9').prepare_from_model(model)
    with pytest.raises(KeyError, match="'missing'"):
        RecorderManager(dict(a=recorder)).get_recorder('missing')

    # a module shared by two parents (as the fake-quant graphs of
    # MMArchitectureQuant share layers) is found by either path, and
    # records the calls of both
    shared = nn.Linear(2, 2)
    twins = nn.ModuleDict(
        dict(a=nn.Sequential(shared), b=nn.Sequential(shared)))
    assert [n for n, _ in twins.named_modules()].count('b.0') == 0
    second = ModuleOutputsRecorder('b.0')
    second.prepare_from_model(twins)
    assert second.module is shared
    with second:
        twins['a'](torch.ones(1, 2))
        twins['b'](torch.zeros(1, 2))
    torch.testing.assert_close(
        second.get_record_data(record_idx=0), shared(torch.ones(1, 2)))
    torch.testing.assert_close(
        second.get_record_data(record_idx=1), shared(torch.zeros(1, 2)))


# ------------------------------------------------------------- distiller
class TinyNet(nn.Module):

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.feat = nn.Conv2d(1, channels, 1)
        self.fc = nn.Linear(channels, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.feat(x).mean((2, 3)))


def kd_distiller(**overrides) -> ConfigurableDistiller:
    cfg = dict(
        student_recorders=dict(
            fc=dict(type='ModuleOutputs', source='fc'),
            feat=dict(type='ModuleOutputs', source='feat')),
        teacher_recorders=dict(
            fc=dict(type='ModuleOutputs', source='fc'),
            feat=dict(type='ModuleOutputs', source='feat')),
        distill_losses=dict(
            loss_kl=dict(type='KLDivergence', tau=2, loss_weight=3)),
        loss_forward_mappings=dict(
            loss_kl=dict(
                preds_S=dict(from_student=True, recorder='fc'),
                preds_T=dict(from_student=False, recorder='fc'))))
    cfg.update(overrides)
    return ConfigurableDistiller(**cfg)


def run_pair(distiller, student, teacher, x):
    distiller.prepare_from_student(student)
    distiller.prepare_from_teacher(teacher)
    with distiller.teacher_recorders, torch.no_grad():
        teacher(x)
    with distiller.student_recorders:
        student(x)
    return distiller.compute_distill_losses()


def test_kd_loss_equals_the_kl_formula():
    torch.manual_seed(0)
    student, teacher, x = TinyNet(3), TinyNet(6), torch.randn(4, 1, 3, 3)
    losses = run_pair(kd_distiller(), student, teacher, x)
    assert list(losses) == ['loss_kl']
    tau = 2.
    p_t = F.softmax(teacher(x) / tau, dim=1)
    log_p_s = F.log_softmax(student(x) / tau, dim=1)
    expected = 3 * tau**2 * (p_t * (p_t.log() - log_p_s)).sum() / 4
    torch.testing.assert_close(losses['loss_kl'], expected)
    assert no_hooks(student) and no_hooks(teacher)


def test_connector_maps_the_student_feature():
    torch.manual_seed(0)
    student, teacher, x = TinyNet(3), TinyNet(6), torch.randn(2, 1, 3, 3)
    distiller = kd_distiller(
        distill_losses=dict(loss_feat=dict(type='L2Loss', loss_weight=2)),
        connectors=dict(
            s_proj=dict(
                type='ConvModuleConnector',
                in_channel=3,
                out_channel=6,
                norm_cfg=dict(type='BN'))),
        loss_forward_mappings=dict(
            loss_feat=dict(
                s_feature=dict(
                    from_student=True, recorder='feat',
                    connector='s_proj'),
                t_feature=dict(from_student=False, recorder='feat'))))
    distiller.eval()
    losses = run_pair(distiller, student, teacher, x)
    projected = distiller.connectors['s_proj'](student.feat(x))
    assert projected.shape == teacher.feat(x).shape
    expected = 2 * F.mse_loss(projected, teacher.feat(x))
    torch.testing.assert_close(losses['loss_feat'], expected)


@pytest.mark.parametrize('detach', [None, True])
def test_trainable_teacher_connector_gets_gradients(detach):
    """Factor Transfer's pretraining (1.x config): the paraphraser
    reconstructs the frozen teacher's feature and must learn from the L2
    loss on its output, unless the loss config asks to detach."""
    torch.manual_seed(0)
    student, teacher, x = TinyNet(3), TinyNet(6), torch.randn(2, 1, 4, 4)
    loss_cfg = dict(type='L2Loss', loss_weight=1.0)
    if detach is not None:
        loss_cfg['teacher_detach'] = detach
    distiller = kd_distiller(
        distill_losses=dict(loss_rec=loss_cfg),
        connectors=dict(
            t_para=dict(type='Paraphraser', phase='pretrain', in_channel=6,
                        out_channel=4)),
        loss_forward_mappings=dict(
            loss_rec=dict(
                s_feature=dict(from_student=False, recorder='feat'),
                t_feature=dict(from_student=False, recorder='feat',
                               connector='t_para'))))
    losses = run_pair(distiller, student, teacher, x)
    if detach:  # nothing to learn from: both sides are detached
        assert not losses['loss_rec'].requires_grad
        return
    losses['loss_rec'].backward()
    grads = [p.grad for p in distiller.connectors['t_para'].parameters()]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)
    assert all(p.grad is None for p in teacher.parameters())


def mapping(**arg_specs):
    return dict(loss_kl=arg_specs)


S_FC = dict(from_student=True, recorder='fc')
T_FC = dict(from_student=False, recorder='fc')


@pytest.mark.parametrize('mappings,words', [
    (mapping(preds_S=dict(from_student=True, recorder='logits'), preds_T=T_FC),
     ["'loss_kl'", "'preds_S'", "'logits'", 'student_recorders']),
    (mapping(preds_S=S_FC, preds_T=dict(from_student=False, recorder='x')),
     ["'loss_kl'", "'preds_T'", "'x'", 'teacher_recorders']),
    (mapping(pred_S=S_FC, preds_T=T_FC),
     ["'loss_kl'", "'pred_S'", 'KLDivergence', 'preds_S']),
    (mapping(preds_S=dict(recorder='fc'), preds_T=T_FC),
     ["'loss_kl'", "'preds_S'", 'from_student']),
    (mapping(preds_S=dict(S_FC, connector='proj'), preds_T=T_FC),
     ["'loss_kl'", "'preds_S'", "'proj'", 'connectors']),
    (mapping(preds_S=dict(S_FC, recoder='fc'), preds_T=T_FC),
     ["'preds_S'", 'recoder']),
    (mapping(preds_S=S_FC), ["'loss_kl'", "'teacher'"]),
    (dict(loss_kl=dict(preds_S=S_FC, preds_T=T_FC),
          loss_other=dict(preds_S=S_FC)), ["'loss_other'", 'distill_losses']),
    (dict(), ["'loss_kl'", 'no entry']),
])
def test_mapping_errors_name_the_key(mappings, words):
    with pytest.raises((KeyError, TypeError)) as err:
        kd_distiller(loss_forward_mappings=mappings)
    message = str(err.value)
    for word in words:
        assert word in message, (word, message)


def test_gt_label_losses_need_gt_labels():
    with pytest.raises(KeyError, match='gt_labels'):
        kd_distiller(
            distill_losses=dict(loss_dkd=dict(type='DKDLoss')),
            loss_forward_mappings=dict(
                loss_dkd=dict(preds_S=S_FC, preds_T=T_FC)))


def test_deliveries_are_refused_not_ignored():
    with pytest.raises(NotImplementedError, match='distill_deliveries'):
        kd_distiller(distill_deliveries=dict(d=dict(type='MethodOutputs')))


# -------------------------------------------------------------- algorithm
def kd_algorithm_cfg(**overrides) -> dict:
    cfg = dict(
        type='SingleTeacherDistill',
        architecture=classifier_cfg(2, scope='mmpretrain'),
        teacher=classifier_cfg(4, scope='mmpretrain'),
        distiller=dict(
            type='ConfigurableDistiller',
            student_recorders=dict(
                fc=dict(type='ModuleOutputs', source='head.fc'),
                gt_labels=dict(
                    type='ModuleInputs', source='head.loss_module')),
            teacher_recorders=dict(
                fc=dict(type='ModuleOutputs', source='head.fc')),
            distill_losses=dict(
                loss_kl=dict(type='KLDivergence', tau=1, loss_weight=3),
                loss_dkd=dict(type='DKDLoss', tau=1, beta=0.5)),
            loss_forward_mappings=dict(
                loss_kl=dict(preds_S=S_FC, preds_T=T_FC),
                loss_dkd=dict(
                    preds_S=S_FC,
                    preds_T=T_FC,
                    gt_labels=dict(
                        recorder='gt_labels', from_student=True,
                        data_idx=1)))))
    cfg.update(overrides)
    return cfg


def build_algorithm(**overrides) -> SingleTeacherDistill:
    from mmrazor.registry import MODELS
    return MODELS.build(kd_algorithm_cfg(**overrides))


def test_single_teacher_distill_loss():
    torch.manual_seed(0)
    algorithm = build_algorithm()
    algorithm.train()
    assert not algorithm.teacher.training
    data = algorithm.data_preprocessor(make_batch(4), True)
    losses = algorithm(**data, mode='loss')
    assert set(losses) == {'student.loss', 'loss_kl', 'loss_dkd'}
    sum(losses.values()).backward()
    assert all(p.grad is None for p in algorithm.teacher.parameters())
    assert not any(p.requires_grad for p in algorithm.teacher.parameters())
    assert algorithm.architecture.head.fc.weight.grad is not None
    assert no_hooks(algorithm)
    # in eval mode (BN on running stats), the KL loss is the formula on
    # the logits of the two models called by hand
    algorithm.eval()
    with torch.no_grad():
        evaluated = algorithm.loss(data['inputs'], data['data_samples'])
        s = algorithm.architecture(data['inputs'], mode='tensor')
        t = algorithm.teacher(data['inputs'], mode='tensor')
    expected = 3 * F.kl_div(
        F.log_softmax(s, 1), F.softmax(t, 1), reduction='batchmean')
    torch.testing.assert_close(evaluated['loss_kl'], expected)


def test_calculate_student_loss_false_and_trainable_teacher():
    algorithm = build_algorithm(
        calculate_student_loss=False, teacher_trainable=True)
    algorithm.train()
    assert algorithm.teacher.training
    assert not any(m.training for m in algorithm.teacher.modules()
                   if isinstance(m, nn.BatchNorm2d))
    data = algorithm.data_preprocessor(make_batch(4), True)
    losses = algorithm(**data, mode='loss')
    assert set(losses) == {'teacher.loss', 'loss_kl', 'loss_dkd'}


def test_teacher_inplace_ops_made_out_of_place():
    algorithm = build_algorithm()
    relus = [m for m in algorithm.teacher.modules() if isinstance(m, nn.ReLU)]
    assert relus and not any(m.inplace for m in relus)
    kept = build_algorithm(teacher_module_inplace=True)
    assert any(m.inplace for m in kept.teacher.modules()
               if isinstance(m, nn.ReLU))


def test_teacher_ckpt_url_refused_local_file_loaded(tmp_path):
    with pytest.raises(ValueError, match='download'):
        build_algorithm(teacher_ckpt='https://example.com/teacher.pth')
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        build_algorithm(teacher_ckpt=str(tmp_path / 'missing.pth'))
    from mmrazor.registry import MODELS
    teacher = MODELS.build(classifier_cfg(4, scope='mmpretrain'))
    path = str(tmp_path / 'teacher.pth')
    torch.save(dict(state_dict=teacher.state_dict()), path)
    algorithm = build_algorithm(teacher_ckpt=path)
    for key, value in teacher.state_dict().items():
        torch.testing.assert_close(algorithm.teacher.state_dict()[key], value)
    assert algorithm.teacher.is_init


# ------------------------------------------------------------- end to end
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DISTILL_1X = osp.join(
    osp.dirname(REPO), 'shared', 'reference', 'mmrazor-1.x', 'configs',
    'distill', 'mmcls')
KD_CONFIG = 'kd/kd_logits_resnet34_resnet18_8xb32_in1k.py'


@pytest.mark.skipif(
    not osp.isdir(DISTILL_1X), reason='1.x reference configs not available')
@pytest.mark.parametrize('config', [
    KD_CONFIG,
    pytest.param(
        'wsld/wsld_logits_resnet34_resnet18_8xb32_in1k.py',
        marks=pytest.mark.e2e),
    pytest.param(
        'fitnets/fitnets_backbone_logits_resnet50_resnet18_8xb32_in1k.py',
        marks=pytest.mark.e2e),
    pytest.param('dkd/dkd_resnet34_resnet18_8xb32_in1k.py',
                 marks=pytest.mark.e2e),
])
def test_train_1x_distill_config(config, tmp_path, monkeypatch):
    from mmrazor.apis.config_compat import load_config
    from mmrazor.datasets import export_fashion_mnist
    from mmrazor.registry import MODELS
    from tool_runs import train_in_process

    config = osp.join(DISTILL_1X, config)
    root = export_fashion_mnist(str(tmp_path / 'imagenet'), per_class=2)
    # the config's teacher_ckpt is a URL: give a local one instead
    teacher = MODELS.build(load_config(config).model.teacher)
    teacher_ckpt = str(tmp_path / 'teacher.pth')
    torch.save(dict(state_dict=teacher.state_dict()), teacher_ckpt)

    loaders = ('train_dataloader', 'val_dataloader', 'test_dataloader')
    options = [f'model.teacher_ckpt={teacher_ckpt}', 'train_cfg.max_epochs=1']
    for key in loaders:
        options += [
            f'{key}.dataset.data_root={root}', f'{key}.batch_size=2',
            f'{key}.num_workers=0', f'{key}.persistent_workers=False',
            f'{key}.dataset.indices=2'
        ]
    runner = train_in_process(config, str(tmp_path / 'work'), options,
                              monkeypatch)

    model = runner.model
    assert type(model) is SingleTeacherDistill
    assert type(runner.val_loop).__name__ == 'SingleTeacherDistillValLoop'
    scalars = runner.message_hub.log_scalars
    distill_losses = runner.cfg.model.distiller.distill_losses
    assert 'train/student.loss' in scalars
    assert all(f'train/{name}' in scalars for name in distill_losses)
    assert 'val/accuracy/top1' in scalars
    assert 'val/teacher.accuracy/top1' in scalars
    # the frozen teacher is the saved one, unchanged by training
    for key, value in teacher.state_dict().items():
        torch.testing.assert_close(model.teacher.state_dict()[key], value)
    assert osp.isfile(osp.join(str(tmp_path / 'work'), 'epoch_1.pth'))


# ------------------------------------------------------ FpnTeacherDistill
def fpn_algorithm_cfg(**overrides) -> dict:
    """CWD between the backbone outputs of two classifiers of one width."""
    backbone = dict(type='ModuleOutputs', source='backbone')
    cfg = dict(
        type='FpnTeacherDistill',
        architecture=classifier_cfg(2, scope='mmpretrain'),
        teacher=classifier_cfg(2, scope='mmpretrain'),
        distiller=dict(
            type='ConfigurableDistiller',
            student_recorders=dict(feat=backbone),
            teacher_recorders=dict(feat=backbone),
            distill_losses=dict(
                loss_cwd=dict(type='ChannelWiseDivergence', tau=1,
                              loss_weight=5)),
            loss_forward_mappings=dict(
                loss_cwd=dict(
                    preds_S=dict(from_student=True, recorder='feat',
                                 data_idx=0),
                    preds_T=dict(from_student=False, recorder='feat',
                                 data_idx=0)))))
    cfg.update(overrides)
    return cfg


def test_fpn_teacher_distill_runs_the_teacher_up_to_its_neck():
    from mmrazor.models import FpnTeacherDistill
    from mmrazor.registry import MODELS
    torch.manual_seed(0)
    algorithm = MODELS.build(fpn_algorithm_cfg())
    assert isinstance(algorithm, FpnTeacherDistill)
    head_calls = []
    algorithm.teacher.head.register_forward_hook(
        lambda *args: head_calls.append(1))
    algorithm.train()
    data = algorithm.data_preprocessor(make_batch(2), True)
    losses = algorithm(**data, mode='loss')
    assert set(losses) == {'student.loss', 'loss_cwd'}
    assert losses['loss_cwd'] > 0 and not head_calls
    sum(losses.values()).backward()
    assert all(p.grad is None for p in algorithm.teacher.parameters())
    # the recorded teacher map is the teacher's backbone output
    algorithm.eval()
    with torch.no_grad():
        evaluated = algorithm.loss(data['inputs'], data['data_samples'])
        s = algorithm.architecture.backbone(data['inputs'])
        t = algorithm.teacher.backbone(data['inputs'])
    expected = 5 * algorithm.distiller.distill_losses['loss_cwd'].loss(
        s[0], t[0])
    torch.testing.assert_close(evaluated['loss_cwd'], expected)


def test_fpn_teacher_distill_refuses_a_trainable_teacher():
    from mmrazor.registry import MODELS
    with pytest.raises(ValueError, match='teacher_trainable'):
        MODELS.build(fpn_algorithm_cfg(teacher_trainable=True))
