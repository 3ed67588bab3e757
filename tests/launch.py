"""Launching a 2-process (gloo, CPU) run from a test, as users launch it.

One helper for every multi-process test: a free port, the launcher module
(``torch.distributed.run`` or the older ``torch.distributed.launch
--use-env``), one OpenMP thread per worker, and the output captured.

PyTorch 2.14's gloo sometimes aborts a worker while the interpreter exits,
after the run's work is done (``terminate called without an active
exception``: a C++ thread still joinable at static destruction; seen on a
loaded 2-core machine, even after ``destroy_process_group``). A launch
that fails with exactly that signature is run once more; any other
failure, or the same one twice, fails the test.
"""
import os
import socket
import subprocess
import sys
from typing import Dict, Optional, Sequence

TEARDOWN_ABORT = 'terminate called without an active exception'


def free_port() -> int:
    """A TCP port free on localhost now."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def launch(args: Sequence[str],
           nproc: int = 2,
           launcher: str = 'torch.distributed.run',
           cwd: Optional[str] = None,
           env: Optional[Dict[str, str]] = None,
           timeout: int = 420) -> subprocess.CompletedProcess:
    """Run ``python -m <launcher> ... args`` and assert it succeeded.

    Args:
        args (Sequence[str]): The script and its arguments.
        nproc (int): Processes. Defaults to 2.
        launcher (str): ``'torch.distributed.run'`` (torchrun) or
            ``'torch.distributed.launch'`` (run with ``--use-env``).
        cwd (str, optional): Working directory.
        env (dict, optional): Extra environment variables.
        timeout (int): Seconds. Defaults to 420.

    Returns:
        subprocess.CompletedProcess: The finished launch.
    """
    full_env = dict(os.environ, OMP_NUM_THREADS='1', **(env or {}))
    for attempt in range(2):
        cmd = [sys.executable, '-m', launcher]
        if launcher == 'torch.distributed.launch':
            cmd.append('--use-env')
        cmd += ['--nproc_per_node', str(nproc), '--master_port',
                str(free_port()), *map(str, args)]
        proc = subprocess.run(cmd, cwd=cwd, env=full_env,
                              capture_output=True, text=True,
                              timeout=timeout)
        output = proc.stdout + proc.stderr
        if proc.returncode == 0 or TEARDOWN_ABORT not in output:
            break
    assert proc.returncode == 0, output[-3000:]
    return proc
