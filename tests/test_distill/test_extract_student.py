"""The student extracted from a distillation checkpoint loads into the
plain student config with no missing keys."""
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import save_checkpoint

from mmrazor.registry import MODELS
from tool_runs import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG_DIR = osp.join(ROOT, 'configs', 'distill', 'fashion_mnist')
KD_CFG = osp.join(CFG_DIR, 'kd_resnet18-w16_resnet18-w4_fashion-mnist.py')
STUDENT_CFG = osp.join(CFG_DIR, 'student_resnet18-w4_fashion-mnist.py')


def build(cfg):
    import mmrazor.models  # noqa: F401
    return MODELS.build(cfg)


@pytest.fixture
def distill_checkpoint(tmp_path):
    cfg = Config.fromfile(KD_CFG)
    cfg.model.distiller.teacher_ckpt = None
    alg = build(cfg.model)
    for p in alg.architecture.parameters():  # recognisable weights
        torch.nn.init.normal_(p)
    path = str(tmp_path / 'epoch_6.pth')
    save_checkpoint(
        dict(state_dict=alg.state_dict(), meta=dict(epoch=6, seed=0)), path)
    return alg, path


def test_extracted_student_loads_into_plain_config(distill_checkpoint,
                                                   tmp_path, monkeypatch,
                                                   capsys):
    alg, src = distill_checkpoint
    tool = load_tool('model_converters/extract_student.py')
    dst = str(tmp_path / 'student.pth')
    monkeypatch.setattr(
        sys, 'argv', ['extract_student.py', src, dst, '--verify', STUDENT_CFG])
    tool.main()
    assert 'no missing or unexpected keys' in capsys.readouterr().out

    student = build(Config.fromfile(STUDENT_CFG).model)
    # strict=True raises on any missing or unexpected key.
    load_checkpoint(student, dst, map_location='cpu', strict=True)
    expect = alg.architecture.model.state_dict()
    got = student.state_dict()
    assert set(got) == set(expect)
    for key, value in expect.items():
        assert torch.equal(got[key], value), key
    saved = torch.load(dst, weights_only=True)
    assert not any(
        k.startswith(('distiller', 'architecture'))
        for k in saved['state_dict'])
    assert saved['meta']['epoch'] == 6
    # Same predictions as the student inside the algorithm.
    alg.eval()
    student.eval()
    x = torch.randn(3, 1, 28, 28)
    assert torch.allclose(alg(x, mode='tensor'), student(x, mode='tensor'))


def test_not_a_distillation_checkpoint(tmp_path):
    tool = load_tool('model_converters/extract_student.py')
    src = str(tmp_path / 'plain.pth')
    torch.save(dict(state_dict={'backbone.conv1.weight': torch.zeros(1)}), src)
    with pytest.raises(KeyError, match="top-level keys are \\['backbone'\\]"):
        tool.extract(src, str(tmp_path / 'out.pth'))
    assert not osp.exists(tmp_path / 'out.pth')


def test_prefix_option(tmp_path):
    tool = load_tool('model_converters/extract_student.py')
    src = str(tmp_path / 'ckpt.pth')
    torch.save(
        dict(
            state_dict={
                'architecture.fc.weight': torch.ones(2),
                'distiller.teacher.fc.weight': torch.zeros(2)
            }), src)
    state = tool.extract(src, str(tmp_path / 'out.pth'))
    assert list(state) == ['fc.weight']
