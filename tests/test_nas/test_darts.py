"""DARTS: the alternating search step, the unrolled approximation, the
genotype and the retraining path.

The updates a ``train_step`` makes are compared with updates computed here
independently: gradients by ``torch.autograd`` through
``torch.func.functional_call`` (the exact second-order gradient for
``unroll=True``), not through the algorithm's own code.
"""
import copy
import os.path as osp

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper, OptimWrapperDict, build_optim_wrapper
from torch.func import functional_call

from mmrazor.core import MultiLoaderIterBasedRunner
from mmrazor.models.algorithms import Darts
from mmrazor.models.mutables import DiffMutableOP
from mmrazor.registry import MODELS
from mmrazor.structures import (dump_subnet_yaml, load_fix_subnet,
                                load_subnet_yaml)
from mmrazor.utils.checkpoint import safe_torch_load

ARCH_LR, WEIGHT_LR, WD = 0.5, 0.3, 0.01


class ToyNet(BaseModel):
    """Two mixed ops between tiny dense layers; loss is cross-entropy."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.stem = nn.Linear(4, 5)
        self.op1 = DiffMutableOP(
            nn.ModuleDict(
                dict(
                    lin_tanh=nn.Sequential(nn.Linear(5, 5), nn.Tanh()),
                    lin_sig=nn.Sequential(nn.Linear(5, 5), nn.Sigmoid()),
                    skip=nn.Identity())),
            alias='op1')
        self.op2 = DiffMutableOP(
            nn.ModuleDict(
                dict(
                    lin_tanh=nn.Sequential(nn.Linear(5, 5), nn.Tanh()),
                    lin=nn.Linear(5, 5))),
            alias='op2')
        self.head = nn.Linear(5, 3)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = torch.tanh(self.stem(inputs))
        out = self.head(self.op2(torch.tanh(self.op1(x))))
        if mode == 'loss':
            return {'loss': F.cross_entropy(out, data_samples)}
        return out


def _batch(seed: int, n: int = 8) -> dict:
    g = torch.Generator().manual_seed(seed)
    return dict(
        inputs=torch.randn(n, 4, generator=g, dtype=torch.float64),
        data_samples=torch.randint(0, 3, (n, ), generator=g))


def _toy_darts(unroll: bool = False) -> Darts:
    model = Darts(ToyNet(), mutator=dict(type='DartsMutator',
                                         ignore_choices=()),
                  unroll=unroll)
    model.double()
    with torch.no_grad():  # distinct, non-trivial architecture weights
        g = torch.Generator().manual_seed(3)
        for p in model.mutator.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


def _wrappers(model: Darts, momentum: float = 0.0) -> OptimWrapperDict:
    return build_optim_wrapper(
        model,
        dict(
            constructor='mmrazor.SeparateOptimWrapperConstructor',
            architecture=dict(
                optimizer=dict(
                    type='SGD',
                    lr=WEIGHT_LR,
                    momentum=momentum,
                    weight_decay=WD)),
            mutator=dict(optimizer=dict(type='SGD', lr=ARCH_LR))))


# ------------------------------------------------ independent reference
class Reference:
    """The loss of a frozen copy of the toy architecture as a pure
    function of ``(weights, alphas, batch)``."""

    def __init__(self, model: Darts) -> None:
        self.net = copy.deepcopy(model.architecture)
        self.keys = list(model.mutator.search_groups)
        self.weights = {
            k: v.detach().clone()
            for k, v in model.architecture.named_parameters()
        }
        self.alphas = [
            model.mutator.arch_param_of(k).detach().clone()
            for k in self.keys
        ]

    def loss(self, weights, alphas, batch) -> torch.Tensor:
        for mutable, alpha in zip((self.net.op1, self.net.op2), alphas):
            mutable.set_arch_param(alpha)
        return functional_call(
            self.net, weights, (batch['inputs'], batch['data_samples']),
            dict(mode='loss'))['loss']


def _alpha_leaves(alphas):
    return [a.clone().requires_grad_(True) for a in alphas]


def _weight_step_reference(ref: Reference, alphas, batch, weights=None):
    """SGD (weight decay, no momentum buffer yet) on the train batch."""
    weights = ref.weights if weights is None else weights
    leaves = {k: v.clone().requires_grad_(True) for k, v in weights.items()}
    loss = ref.loss(leaves, alphas, batch)
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return {
        k: w - WEIGHT_LR * (g + WD * w)
        for (k, w), g in zip(weights.items(), grads)
    }


def _state(model: Darts):
    alphas = [
        model.mutator.arch_param_of(k).detach().clone()
        for k in model.mutator.search_groups
    ]
    weights = {
        k: v.detach().clone()
        for k, v in model.architecture.named_parameters()
    }
    return alphas, weights


def _assert_close_list(got, expected, **kw):
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, **kw)


# -------------------------------------------------------------- tests
def test_first_order_step_uses_val_for_alpha_and_train_for_weights():
    model = _toy_darts(unroll=False)
    train, val = _batch(1), _batch(2)
    ref = Reference(model)

    log = model.train_step([train, val], _wrappers(model))
    alphas, weights = _state(model)

    # architecture step: gradient of the validation loss only
    a = _alpha_leaves(ref.alphas)
    grads = torch.autograd.grad(ref.loss(ref.weights, a, val), a)
    expected_alphas = [a0 - ARCH_LR * g for a0, g in zip(ref.alphas, grads)]
    _assert_close_list(alphas, expected_alphas)
    # ... and not that of the train batch (the check discriminates)
    a = _alpha_leaves(ref.alphas)
    wrong = torch.autograd.grad(ref.loss(ref.weights, a, train), a)
    assert not torch.allclose(alphas[0], ref.alphas[0] - ARCH_LR * wrong[0])

    # weight step: gradient of the train loss at the new alphas only
    expected = _weight_step_reference(ref, expected_alphas, train)
    for k in expected:
        torch.testing.assert_close(weights[k], expected[k])
    wrong = _weight_step_reference(ref, expected_alphas, val)
    assert not torch.allclose(weights['head.weight'], wrong['head.weight'])

    # logged losses: the val loss at the start, the train loss after the
    # architecture step
    torch.testing.assert_close(
        log['arch.loss'], ref.loss(ref.weights, ref.alphas, val).detach())
    torch.testing.assert_close(
        log['loss'], ref.loss(ref.weights, expected_alphas, train).detach())
    # no gradient is left behind
    assert all(p.grad is None for p in model.parameters())


def test_gradients_seen_by_each_optimizer_with_adam():
    """Hook each optimizer's step: the gradients it sees are exactly the
    val-loss gradient (mutator) and the train-loss gradient (weights), with
    stateful optimizers (Adam, SGD with momentum) on both sides."""
    model = _toy_darts(unroll=False)
    wrappers = build_optim_wrapper(
        model,
        dict(
            constructor='mmrazor.SeparateOptimWrapperConstructor',
            architecture=dict(
                optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
            mutator=dict(optimizer=dict(type='Adam', lr=1e-2))))
    seen = {}
    for name in ('architecture', 'mutator'):
        wrappers[name].optimizer.register_step_pre_hook(
            lambda opt, args, kwargs, name=name: seen.__setitem__(
                name, [
                    p.grad.clone() for g in opt.param_groups
                    for p in g['params']
                ]))
    train, val = _batch(1), _batch(2)
    ref = Reference(model)
    model.train_step([train, val], wrappers)
    alphas, _ = _state(model)

    a = _alpha_leaves(ref.alphas)
    expected = torch.autograd.grad(ref.loss(ref.weights, a, val), a)
    _assert_close_list(seen['mutator'], list(expected))
    w = {k: v.clone().requires_grad_(True) for k, v in ref.weights.items()}
    expected = torch.autograd.grad(
        ref.loss(w, alphas, train), list(w.values()))
    _assert_close_list(seen['architecture'], list(expected))


def test_existing_gradients_of_the_other_group_are_kept():
    """Gradient accumulation: an architecture gradient still accumulating
    survives the weight step, unpolluted by the train batch."""
    model = _toy_darts(unroll=False)
    wrappers = _wrappers(model)
    arch_w = wrappers['mutator']
    arch_w._accumulative_counts = 2  # the mutator steps every 2nd call
    arch_w._max_counts = 100
    arch_w._remainder_counts = 0
    train, val = _batch(1), _batch(2)
    ref = Reference(model)
    model.train_step([train, val], wrappers)
    # no architecture update yet; its gradient (val only, halved by the
    # accumulation) is kept for the next step
    alphas, _ = _state(model)
    _assert_close_list(alphas, ref.alphas)
    a = _alpha_leaves(ref.alphas)
    grads = torch.autograd.grad(ref.loss(ref.weights, a, val), a)
    kept = [model.mutator.arch_param_of(k).grad for k in ref.keys]
    _assert_close_list(kept, [g / 2 for g in grads])


def _exact_unrolled_alpha_grad(ref: Reference, train, val, momentum_bufs):
    """d/d alpha of L_val(w - lr (m buf + grad_w L_train + wd w), alpha),
    by double back-propagation."""
    a = _alpha_leaves(ref.alphas)
    w = {k: v.clone().requires_grad_(True) for k, v in ref.weights.items()}
    g = torch.autograd.grad(
        ref.loss(w, a, train), list(w.values()), create_graph=True)
    w_virtual = {}
    for (k, wk), gk in zip(w.items(), g):
        step = gk + WD * wk
        if momentum_bufs is not None:
            step = step + 0.9 * momentum_bufs[k]
        w_virtual[k] = wk - WEIGHT_LR * step
    return torch.autograd.grad(ref.loss(w_virtual, a, val), a)


@pytest.mark.parametrize('momentum', [0.0, 0.9])
def test_unrolled_step_matches_exact_second_order_gradient(momentum):
    model = _toy_darts(unroll=True)
    wrappers = _wrappers(model, momentum=momentum)
    train0, val0 = _batch(5), _batch(6)
    bufs = None
    if momentum:
        # one step first, so the virtual step uses a momentum buffer
        model.train_step([train0, val0], wrappers)
        opt = wrappers['architecture'].optimizer
        bufs = {
            k: opt.state[p]['momentum_buffer'].clone()
            for k, p in model.architecture.named_parameters()
        }
    train, val = _batch(1), _batch(2)
    ref = Reference(model)

    model.train_step([train, val], wrappers)
    alphas, weights = _state(model)

    exact = _exact_unrolled_alpha_grad(ref, train, val, bufs)
    expected = [a0 - ARCH_LR * g for a0, g in zip(ref.alphas, exact)]
    # central finite differences in float64: error O(eps^2)
    _assert_close_list(alphas, expected, rtol=1e-6, atol=1e-7)

    # it is not the first-order update
    a = _alpha_leaves(ref.alphas)
    first = torch.autograd.grad(ref.loss(ref.weights, a, val), a)
    first_alphas = [a0 - ARCH_LR * g for a0, g in zip(ref.alphas, first)]
    assert max((x - y).abs().max()
               for x, y in zip(alphas, first_alphas)) > 1e-4

    # the weights were restored after the virtual steps, then trained on
    # the train batch at the new alphas
    if not momentum:
        expected_w = _weight_step_reference(ref, expected, train)
        for k in expected_w:
            torch.testing.assert_close(weights[k], expected_w[k])
    assert all(p.grad is None for p in model.parameters())


def test_unrolled_search_decreases_the_validation_loss():
    """Train and val samples follow one labelling rule: the search lowers
    the val loss, and the searched alphas alone (with the initial weights)
    already do."""
    model = _toy_darts(unroll=True)
    wrappers = _wrappers(model)
    rule = torch.randn(4, 3, generator=torch.Generator().manual_seed(9),
                       dtype=torch.float64)
    train, val = _batch(1, n=64), _batch(2, n=64)
    for b in (train, val):
        b['data_samples'] = (b['inputs'] @ rule).argmax(dim=1)
    ref = Reference(model)
    before = float(ref.loss(ref.weights, ref.alphas, val))
    for _ in range(40):
        model.train_step([train, val], wrappers)
    after = Reference(model)
    assert float(after.loss(after.weights, after.alphas, val)) < before - 0.1
    # the architecture parameters alone: the searched alphas with the
    # original weights beat the original alphas with the original weights
    # on the val batch
    assert float(ref.loss(ref.weights, after.alphas, val)) < before


def test_unroll_rejects_accumulation():
    model = _toy_darts(unroll=True)
    wrappers = _wrappers(model)
    wrappers['mutator']._accumulative_counts = 2
    with pytest.raises(ValueError, match='accumulative_counts=2'):
        model.train_step([_batch(1), _batch(2)], wrappers)


def test_clear_errors():
    model = _toy_darts()
    wrappers = _wrappers(model)
    with pytest.raises(TypeError, match=r'\[train_batch, val_batch\]'):
        model.train_step(_batch(1), wrappers)
    with pytest.raises(KeyError, match="'mutator'"):
        model.train_step([_batch(1), _batch(2)], wrappers['architecture'])
    with pytest.raises(ValueError, match='fix_subnet'):
        Darts(ToyNet(), retraining=True)
    with pytest.raises(TypeError, match='DifferentiableMutator'):
        Darts(ToyNet(), mutator=dict(type='OneShotModuleMutator'))
    with pytest.raises(KeyError, match="'nope'"):
        build_optim_wrapper(
            model,
            dict(
                constructor='mmrazor.SeparateOptimWrapperConstructor',
                nope=dict(optimizer=dict(type='SGD', lr=0.1))))
    # the dict form of the two batches works too
    model.train_step(dict(train=_batch(1), val=_batch(2)), wrappers)


# ---------------------------------------------- real search space, YAML
def _classifier_cfg(**backbone):
    bb = dict(
        type='DartsBackbone',
        in_channels=1,
        base_channels=4,
        num_layers=3,
        num_nodes=2,
        stem_multiplier=2)
    bb.update(backbone)
    return dict(
        type='mmpretrain.ImageClassifier',
        backbone=bb,
        neck=dict(type='mmpretrain.GlobalAveragePooling'),
        head=dict(
            type='mmpretrain.LinearClsHead',
            num_classes=10,
            in_channels=2 * 16,
            loss=dict(type='mmpretrain.CrossEntropyLoss')))


def _image_batch(seed, n=4):
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(seed)
    return dict(
        inputs=torch.randn(n, 1, 8, 8, generator=g),
        data_samples=[DataSample().set_gt_label(i % 10) for i in range(n)])


def test_separate_constructor_shares_top_level_defaults():
    """``--amp`` sets optim_wrapper.type at the top level: every
    sub-wrapper gets it unless it sets its own."""
    model = _toy_darts()
    wrappers = build_optim_wrapper(
        model,
        dict(
            constructor='mmrazor.SeparateOptimWrapperConstructor',
            type='mmrazor.CPUAmpOptimWrapper',
            architecture=dict(optimizer=dict(type='SGD', lr=0.1)),
            mutator=dict(
                type='OptimWrapper', optimizer=dict(type='Adam', lr=0.1))))
    assert type(wrappers['architecture']).__name__ == 'CPUAmpOptimWrapper'
    assert type(wrappers['mutator']) is OptimWrapper
    arch = {id(p) for p in model.mutator.parameters()}
    opt_params = [
        p for g in wrappers['mutator'].optimizer.param_groups
        for p in g['params']
    ]
    assert {id(p) for p in opt_params} == arch
    weights = [
        p for g in wrappers['architecture'].optimizer.param_groups
        for p in g['params']
    ]
    assert not arch & {id(p) for p in weights}
    with pytest.raises(TypeError, match='one optim wrapper config'):
        build_optim_wrapper(
            model,
            dict(
                constructor='mmrazor.SeparateOptimWrapperConstructor',
                type='OptimWrapper'))


def test_norm_training_keeps_batch_norm_in_training_mode():
    cfg = _classifier_cfg()
    plain = MODELS.build(dict(type='Darts', architecture=cfg)).eval()
    kept = MODELS.build(
        dict(type='Darts', architecture=cfg, norm_training=True)).eval()
    bns = [m for m in kept.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(m.training for m in bns)
    assert not any(m.training for m in plain.modules()
                   if isinstance(m, nn.BatchNorm2d))
    assert not kept.architecture.training  # only the norm layers


def test_darts_backbone_alpha_update_is_val_gradient():
    """On the real search space: the architecture update of a step is SGD
    on the gradient of the val loss (computed here separately)."""
    model = MODELS.build(dict(type='Darts', architecture=_classifier_cfg()))
    model.train()
    ref_model = copy.deepcopy(model)
    train, val = _image_batch(1), _image_batch(2)
    wrappers = _wrappers(model)
    model.train_step([train, val], wrappers)

    data = ref_model.data_preprocessor(val, True)
    loss = ref_model.architecture(**data, mode='loss')['loss']
    params = list(ref_model.mutator.parameters())
    grads = torch.autograd.grad(loss, params)
    for p, p0, g in zip(model.mutator.parameters(), params, grads):
        torch.testing.assert_close(p.detach(), p0.detach() - ARCH_LR * g)


def test_genotype_yaml_loads_into_fresh_supernet_and_retrains(tmp_path):
    model = MODELS.build(
        dict(type='Darts', architecture=_classifier_cfg(), unroll=False))
    names = model.architecture.backbone.cells[0].nodes[0].candidates[
        'normal_n2_p0'].choices
    with torch.no_grad():  # a known genotype: sep_conv_3x3 on input 0,
        for key in model.mutator.search_groups:  # skip on the others
            param = model.mutator.arch_param_of(key)
            if param is None:
                continue
            param.zero_()
            param[names.index('zero')] = 9.  # ignored by DARTS
            best = 'sep_conv_3x3' if key.endswith('p0') else 'skip_connect'
            param[names.index(best)] = 2. if key.endswith('p0') else 1.
    subnet = model.search_subnet()
    assert subnet['normal_n2_p0'] == {'chosen': 'sep_conv_3x3'}
    assert subnet['reduce_n3_p2'] == {'chosen': 'skip_connect'}
    # input 0 has the strongest edge; the others tie at skip (weight 1)
    assert subnet['normal_n3']['chosen'][0] == 'normal_n3_p0'
    assert len(subnet['normal_n3']['chosen']) == 2
    path = str(tmp_path / 'genotype.yaml')
    dump_subnet_yaml(subnet, path)
    assert load_subnet_yaml(path) == subnet

    # a fresh supernet loads it
    fresh = MODELS.build(_classifier_cfg())
    load_fix_subnet(fresh, path)
    node = fresh.backbone.cells[1].nodes[1]  # reduce_n3
    assert node.is_fixed
    assert sorted(node.candidates) == sorted(subnet['reduce_n3']['chosen'])
    assert list(node.candidates['reduce_n3_p0'].candidates) == [
        'sep_conv_3x3'
    ]

    # the retrain path: Darts with fix_subnet is a plain model
    retrain = MODELS.build(
        dict(
            type='Darts',
            architecture=_classifier_cfg(),
            fix_subnet=path,
            retraining=True))
    assert not retrain.is_supernet and retrain.mutator is None
    # the fixed subnet: the genotype without the ops of dropped edges
    fixed = retrain.search_subnet()
    assert fixed == {k: v for k, v in subnet.items() if k in fixed}
    assert 'normal_n3_p0' in fixed and 'normal_n3' in fixed
    n_super = sum(p.numel() for p in model.architecture.parameters())
    n_sub = sum(p.numel() for p in retrain.architecture.parameters())
    assert n_sub < n_super / 2
    wrapper = build_optim_wrapper(
        retrain, dict(optimizer=dict(type='SGD', lr=0.1)))
    assert isinstance(wrapper, OptimWrapper)
    before = [p.detach().clone() for p in retrain.parameters()]
    log = retrain.train_step(_image_batch(1), wrapper)
    assert torch.isfinite(log['loss'])
    assert any(not torch.equal(a, b.detach())
               for a, b in zip(before, retrain.parameters()))
    preds = retrain.val_step(_image_batch(2))
    assert len(preds) == 4 and preds[0].pred_score.shape == (10, )


# ------------------------------------------------------------- runner
class _PairDataset(torch.utils.data.Dataset):

    def __init__(self, seed, n=8):
        self.batch = _batch(seed, n)

    def __len__(self):
        return len(self.batch['inputs'])

    def __getitem__(self, i):
        return dict(
            inputs=self.batch['inputs'][i],
            data_samples=self.batch['data_samples'][i])


def test_multi_loader_runner_searches_and_writes_genotype(tmp_path):
    model = _toy_darts(unroll=True)

    def loader(seed):
        return dict(
            dataset=_PairDataset(seed),
            batch_size=4,
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate'))

    runner = MultiLoaderIterBasedRunner(
        model=model,
        work_dir=str(tmp_path),
        train_dataloader=[loader(1), loader(2)],
        optim_wrapper=dict(
            constructor='mmrazor.SeparateOptimWrapperConstructor',
            architecture=dict(optimizer=dict(type='SGD', lr=0.1)),
            mutator=dict(optimizer=dict(type='Adam', lr=3e-4))),
        param_scheduler=dict(
            architecture=[
                dict(type='CosineAnnealingLR', T_max=4, by_epoch=False)
            ],
            mutator=[]),
        train_cfg=dict(by_epoch=False, max_iters=4),
        custom_hooks=[dict(type='mmrazor.SearchSubnetHook', by_epoch=False)],
        default_scope='mmrazor')
    alphas_before, _ = _state(model)
    runner.train()
    alphas_after, _ = _state(model)
    assert not torch.allclose(alphas_before[0], alphas_after[0])
    written = yaml.safe_load(
        open(osp.join(str(tmp_path), 'subnets', 'latest.yaml')))
    assert written == model.search_subnet()
    assert set(written) == {'op1', 'op2'}
    fresh = ToyNet()
    load_fix_subnet(fresh, osp.join(str(tmp_path), 'subnets', 'iter_4.yaml'))
    assert fresh.op1.is_fixed and fresh.op2.is_fixed


# -------------------------------------------------------- end to end
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SEARCH_CFG = 'configs/nas/darts/darts_supernet_fashion-mnist.py'
RETRAIN_CFG = 'configs/nas/darts/darts_subnet_fashion-mnist.py'


def _tool(*args, timeout=900):
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, *args],
                          cwd=REPO,
                          capture_output=True,
                          text=True,
                          timeout=timeout)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    return proc.stdout + proc.stderr


def _accuracies(work_dir):
    import glob
    import json
    files = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    assert files, f'no scalars.json under {work_dir}'
    with open(sorted(files)[-1]) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r['accuracy/top1'] for r in records if 'accuracy/top1' in r]


@pytest.mark.e2e
def test_small_search_then_retrain_with_tools(tmp_path):
    """tools/train.py runs the small search, which writes the genotype;
    the retrain config trains that genotype; tools/test.py evaluates it."""
    search_dir, retrain_dir = str(tmp_path / 'search'), str(tmp_path / 're')
    _tool('tools/train.py', SEARCH_CFG, '--work-dir', search_dir)
    genotype = osp.join(search_dir, 'subnets', 'latest.yaml')
    assert osp.isfile(osp.join(search_dir, 'subnets', 'epoch_1.yaml'))
    subnet = load_subnet_yaml(genotype)
    assert len(subnet) == 2 * (2 + 2 + 3)  # 2 cell types x (2 routes, 5 ops)
    assert subnet['normal_n2']['chosen'] in (['normal_n2_p0', 'normal_n2_p1'],
                                              ['normal_n2_p1', 'normal_n2_p0'])
    assert all(v['chosen'] != 'zero' for v in subnet.values())
    search_acc = _accuracies(search_dir)
    assert len(search_acc) == 2 and search_acc[-1] > 40, search_acc

    _tool('tools/train.py', RETRAIN_CFG, '--work-dir', retrain_dir,
          '--cfg-options', f'model.fix_subnet={genotype}',
          'train_cfg.max_epochs=1')
    retrain_acc = _accuracies(retrain_dir)
    assert len(retrain_acc) == 1 and retrain_acc[0] > 60, retrain_acc

    # the checkpoint holds exactly the fixed subnet of the genotype
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    cfg = Config.fromfile(osp.join(REPO, RETRAIN_CFG))
    cfg.model.fix_subnet = genotype
    with DefaultScope.overwrite_default_scope('mmrazor'):
        model = MODELS.build(cfg.model)
    ckpt = safe_torch_load(osp.join(retrain_dir, 'epoch_1.pth'))
    assert set(ckpt['state_dict']) == set(model.state_dict())
    for key, value in subnet.items():
        if key in model.search_subnet():
            assert model.search_subnet()[key] == value

    out = _tool('tools/test.py', RETRAIN_CFG,
                osp.join(retrain_dir, 'epoch_1.pth'), '--subnet', genotype,
                '--work-dir', str(tmp_path / 'test'))
    assert 'accuracy/top1' in out


# -------------------------------------------------------- distributed
DDP_SCRIPT = '''
import sys
import torch
import torch.distributed as dist
sys.path.insert(0, sys.argv[2])
from test_darts import _batch, _toy_darts, _wrappers  # noqa: E402
from mmrazor.core import RazorDistributedDataParallel  # noqa: E402

dist.init_process_group('gloo')
rank = dist.get_rank()
out = {}
for unroll in (False, True):
    model = _toy_darts(unroll=unroll)
    ddp = RazorDistributedDataParallel(model, find_unused_parameters=True)
    wrappers = _wrappers(model, momentum=0.9)
    for step in range(2):
        ddp.train_step([_batch(10 * step + rank), _batch(100 + 10 * step +
                                                         rank)], wrappers)
    out[unroll] = {k: v.detach().clone()
                   for k, v in model.state_dict().items()}
torch.save(out, sys.argv[1] + f'/rank{rank}.pt')
del ddp  # the wrapper holds the process group
from mmrazor.utils import close_distributed  # noqa: E402
assert close_distributed()
'''


def _concat(*batches):
    return {
        k: torch.cat([b[k] for b in batches])
        for k in ('inputs', 'data_samples')
    }


@pytest.mark.multiprocess
def test_ddp_two_ranks_equal_one_process_on_both_batches(tmp_path):
    """Under RazorDistributedDataParallel (gloo, 2 ranks) every pass of the
    first-order and of the unrolled step synchronises its gradients: both
    ranks end equal, and equal to one process training on the
    concatenated batches."""
    from launch import launch
    script = tmp_path / 'run.py'
    script.write_text(DDP_SCRIPT)
    launch([script, tmp_path, osp.dirname(osp.abspath(__file__))],
           cwd=REPO, timeout=300)
    r0 = torch.load(tmp_path / 'rank0.pt')
    r1 = torch.load(tmp_path / 'rank1.pt')
    for unroll in (False, True):
        model = _toy_darts(unroll=unroll)
        wrappers = _wrappers(model, momentum=0.9)
        for step in range(2):
            model.train_step([
                _concat(_batch(10 * step), _batch(10 * step + 1)),
                _concat(_batch(100 + 10 * step), _batch(101 + 10 * step))
            ], wrappers)
        for key, value in model.state_dict().items():
            torch.testing.assert_close(r0[unroll][key], r1[unroll][key])
            torch.testing.assert_close(
                r0[unroll][key], value, rtol=1e-7, atol=1e-9)
