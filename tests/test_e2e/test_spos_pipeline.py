"""The small SPOS pipeline as the README runs it: supernet -> search under a
FLOPs budget -> retrain, plus a search killed with SIGKILL and resumed."""
import json
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import yaml

from mmrazor.utils.checkpoint import safe_torch_load

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SUPERNET = 'configs/nas/spos/spos_shufflenet-s_supernet_fashion-mnist.py'
SEARCH = 'configs/nas/spos/spos_shufflenet-s_search_fashion-mnist.py'
SUBNET = 'configs/nas/spos/spos_shufflenet-s_subnet_fashion-mnist.py'


def _run(args, **kwargs):
    proc = subprocess.run([sys.executable, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=900,
                          **kwargs)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _last_accuracy(work_dir):
    import glob
    path = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))[0]
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r['accuracy/top1'] for r in rows if 'accuracy/top1' in r][-1]


@pytest.mark.e2e
def test_spos_pipeline_under_budget_and_resumable_search(tmp_path):
    sn_dir, search_dir = tmp_path / 'supernet', tmp_path / 'search'
    _run(['tools/train.py', SUPERNET, '--work-dir', str(sn_dir)])
    ckpt = str(sn_dir / 'epoch_6.pth')
    _run(['tools/search.py', SEARCH, ckpt, '--work-dir', str(search_dir)])
    best = str(search_dir / 'best_subnet.yaml')
    _run([
        'tools/train.py', SUBNET, '--work-dir',
        str(tmp_path / 'retrain'), '--cfg-options', f'model.fix_subnet={best}'
    ])

    # The searched subnet obeys the budget (counted afresh here).
    from mmengine import Config

    from mmrazor.registry import MODELS
    from mmrazor.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(osp.join(REPO, SUBNET))
    cfg.model.fix_subnet = best
    budget = Config.fromfile(osp.join(REPO,
                                      SEARCH)).searcher.constraints.flops
    assert MODELS.build(cfg.model).get_subnet_flops() <= budget
    # Supernet and search are scored on the 1,000 images held out of the
    # training split, the retrained subnet on the test split.
    supernet_acc = _last_accuracy(sn_dir)
    search = json.load(open(search_dir / 'search_state.json'))
    search_acc = search['evaluated'][search['top_k'][0]]['score']
    test_acc = _last_accuracy(tmp_path / 'retrain')
    print(f'\nheld-out top-1: supernet {supernet_acc:.2f}, best candidate '
          f'{search_acc:.2f}; retrained subnet test top-1 {test_acc:.2f}')
    assert test_acc > 70.0
    # The supernet trained on the 9,000 images not held out, the subnet on
    # all 10,000: 6 epochs of ceil(N / 64) iterations.
    assert safe_torch_load(ckpt)['meta']['iter'] == 6 * 141
    retrain_ckpt = str(tmp_path / 'retrain' / 'epoch_6.pth')
    assert safe_torch_load(retrain_ckpt)['meta']['iter'] == 6 * 157

    # Kill a second search mid-epoch, resume it, compare.
    killed_dir = tmp_path / 'killed'
    proc = subprocess.Popen(
        [sys.executable, 'tools/search.py', SEARCH, ckpt, '--work-dir',
         str(killed_dir)], cwd=REPO, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    state_file = killed_dir / 'search_state.json'
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            state = json.load(open(state_file))
        except (OSError, ValueError):
            state = None
        if state and state['epoch'] == 1 and state['pool'] and \
                len(state['evaluated']) > 16 + 2:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _run(['tools/search.py', SEARCH, ckpt, '--work-dir', str(killed_dir),
          '--resume'])
    full = json.load(open(search_dir / 'search_state.json'))
    resumed = json.load(open(state_file))
    assert set(full['evaluated']) == set(resumed['evaluated'])
    assert yaml.safe_load(open(best)) == yaml.safe_load(
        open(killed_dir / 'best_subnet.yaml'))
