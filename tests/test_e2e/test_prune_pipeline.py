"""The README's three pruning commands on a trained model, run as a user
runs them: train the quickstart ResNet-18, prune it to a third of its
FLOPs, fine-tune, deploy (ONNX included).

Only the outcome is checked: the pruned model with its BatchNorm
statistics recomputed (``pruned.pth``) is far better than with the
unpruned ones, the fine-tuned pruned model keeps most of the accuracy, the
deployed model is the masked one and costs what the report says.
"""
import glob
import json
import os.path as osp
import re
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
QUICKSTART = 'configs/vanilla/resnet18-w16_fashion-mnist.py'
PRUNE_CFG = 'configs/pruning/importance/resnet18-w16_l1-flops50_fashion-mnist.py'
#: Seconds after which a command counts as hung; not a time budget.
HANG_GUARD_S = 3600


def run(*argv: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *argv],
                          cwd=REPO,
                          capture_output=True,
                          text=True,
                          timeout=HANG_GUARD_S)
    assert proc.returncode == 0, (argv, proc.stderr[-3000:])
    return proc


def last_top1(work_dir: str) -> float:
    scalars = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    assert scalars, f'no scalars.json under {work_dir}'
    with open(sorted(scalars)[-1]) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r['accuracy/top1'] for r in records if 'accuracy/top1' in r][-1]


@pytest.mark.e2e
def test_prune_finetune_deploy_keeps_accuracy(tmp_path):
    base_dir = str(tmp_path / 'r18')
    run('tools/train.py', QUICKSTART, '--work-dir', base_dir,
        '--cfg-options', 'train_cfg.max_epochs=3')
    base_top1 = last_top1(base_dir)
    pruned = str(tmp_path / 'pruned')
    run('tools/prune.py', PRUNE_CFG, osp.join(base_dir, 'epoch_3.pth'),
        '--target', 'flops=3x', '--work-dir', pruned)
    with open(osp.join(pruned, 'prune_report.json')) as f:
        report = json.load(f)
    assert report['flops_ratio'] <= 1 / 3

    def test_top1(checkpoint: str, name: str) -> float:
        proc = run('tools/test.py', osp.join(pruned, 'finetune.py'),
                   checkpoint, '--work-dir', str(tmp_path / name))
        found = re.findall(r'accuracy/top1: ([0-9.]+)', proc.stdout)
        assert found, proc.stdout[-2000:]
        return float(found[-1])

    # right after pruning: the masked model with the unpruned checkpoint's
    # BatchNorm statistics, and with those tools/prune.py recomputed
    plain_top1 = test_top1(osp.join(base_dir, 'epoch_3.pth'), 'plain')
    recal_top1 = test_top1(osp.join(pruned, 'pruned.pth'), 'recal')
    assert recal_top1 >= plain_top1 + 20, (plain_top1, recal_top1)
    ft_dir = osp.join(pruned, 'finetune')
    run('tools/train.py', osp.join(pruned, 'finetune.py'), '--work-dir',
        ft_dir)
    ft_top1 = last_top1(ft_dir)
    # a third of the FLOPs, 3 fine-tuning epochs: within 3 points
    assert ft_top1 >= base_top1 - 3.0, (base_top1, ft_top1)
    dep_dir = osp.join(pruned, 'deployed')
    run('tools/deploy_subnet.py', PRUNE_CFG, '--checkpoint',
        osp.join(ft_dir, 'epoch_3.pth'), '--channel-cfg',
        osp.join(pruned, 'subnet.yaml'), '--input-shape', '1', '1', '28',
        '28', '--out-dir', dep_dir, '--onnx')
    with open(osp.join(dep_dir, 'deploy_report.json')) as f:
        deployed = json.load(f)
    assert deployed['max_diff_deployed_vs_masked'] <= 1e-4
    assert deployed['max_diff_onnxruntime_vs_masked'] <= 1e-3
    assert deployed['params_after'] == report['params']
