"""The README's quickstart, run exactly as a new user runs it.

Only the outcome is checked here; how long it takes depends on the machine
and its load: ``benchmarks/quickstart_time.py`` measures that.
"""
import glob
import json
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
QUICKSTART = 'configs/vanilla/resnet18-w16_fashion-mnist.py'
#: Seconds after which a run counts as hung; not a time budget.
HANG_GUARD_S = 3600


@pytest.mark.e2e
def test_quickstart_reaches_85_percent_top1(tmp_path):
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', QUICKSTART, '--work-dir',
         str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    scalars = glob.glob(str(tmp_path / '*' / 'vis_data' / 'scalars.json'))
    assert scalars, 'no scalars.json written'
    with open(scalars[0]) as f:
        records = [json.loads(line) for line in f if line.strip()]
    accuracies = [r['accuracy/top1'] for r in records if 'accuracy/top1' in r]
    assert len(accuracies) == 6  # one evaluation per epoch
    # The log shows the figure a user reads.
    assert f"accuracy/top1: {accuracies[-1]:.4f}" in proc.stdout + proc.stderr
    assert accuracies[-1] >= 85.0, accuracies
