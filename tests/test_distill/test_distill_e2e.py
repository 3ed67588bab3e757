"""The documented Fashion-MNIST distillation workflow, end to end (slow:
runs tools/train.py twice; marked e2e)."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = 'configs/distill/fashion_mnist'


def run(args, **kw):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable] + args,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        **kw)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return proc.stdout + proc.stderr


def last_top1(work_dir):
    scalars = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    with open(scalars[0]) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r['accuracy/top1'] for r in records if 'accuracy/top1' in r][-1]


@pytest.mark.e2e
def test_teacher_distil_extract_test(tmp_path):
    one_epoch = ['train_cfg.max_epochs=1']
    teacher_dir = str(tmp_path / 'teacher')
    run([
        'tools/train.py', f'{CFG}/teacher_resnet18-w16_fashion-mnist.py',
        '--work-dir', teacher_dir, '--cfg-options'
    ] + one_epoch)
    kd_dir = str(tmp_path / 'kd')
    out = run([
        'tools/train.py',
        f'{CFG}/kd_resnet18-w16_resnet18-w4_fashion-mnist.py', '--work-dir',
        kd_dir, '--cfg-options',
        f'model.distiller.teacher_ckpt={teacher_dir}/epoch_1.pth'
    ] + one_epoch)
    assert 'distiller.loss_kd' in out and 'student.loss' in out
    top1 = last_top1(kd_dir)
    student = str(tmp_path / 'student.pth')
    out = run([
        'tools/model_converters/extract_student.py', f'{kd_dir}/epoch_1.pth',
        student, '--verify', f'{CFG}/student_resnet18-w4_fashion-mnist.py'
    ])
    assert 'no missing or unexpected keys' in out
    out = run([
        'tools/test.py', f'{CFG}/student_resnet18-w4_fashion-mnist.py',
        student, '--work-dir',
        str(tmp_path / 'test')
    ])
    # The extracted student scores what the distilled student scored.
    assert f'accuracy/top1: {top1:.4f}' in out
