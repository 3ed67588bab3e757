"""Launching a 2-process (gloo, CPU) run from a test, as users launch it.

One helper for every multi-process test: a free port, the launcher module
(``torch.distributed.run`` or the older ``torch.distributed.launch
--use-env``), one OpenMP thread per worker, and the output captured.

A launch either succeeds or the test fails: no retry. A run that ends
with its process group still referenced (the warning of
:func:`mmrazor.utils.close_distributed`) fails too, since such a group's
threads can abort the process at exit on a loaded machine.
"""
import os
import socket
import subprocess
import sys
from typing import Dict, Optional, Sequence

LEFTOVER_GROUP = 'still referenced after destroy_process_group'


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
           timeout: int = 420,
           check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python -m <launcher> ... args`` and, by default, assert it
    succeeded.

    Args:
        args (Sequence[str]): The script and its arguments.
        nproc (int): Processes. Defaults to 2.
        launcher (str): ``'torch.distributed.run'`` (torchrun) or
            ``'torch.distributed.launch'`` (run with ``--use-env``).
        cwd (str, optional): Working directory.
        env (dict, optional): Extra environment variables; a
            ``PYTHONPATH`` here goes before the caller's.
        timeout (int): Seconds. Defaults to 420.
        check (bool): Assert success (exit code 0, process group released).
            Defaults to True.

    Returns:
        subprocess.CompletedProcess: The finished launch.
    """
    cmd = [sys.executable, '-m', launcher]
    if launcher == 'torch.distributed.launch':
        cmd.append('--use-env')
    cmd += ['--nproc_per_node', str(nproc), '--master_port',
            str(free_port()), *map(str, args)]
    full_env = dict(os.environ, OMP_NUM_THREADS='1', **(env or {}))
    if env and 'PYTHONPATH' in env and os.environ.get('PYTHONPATH'):
        # extend the caller's path (e.g. a checkout tested in place)
        full_env['PYTHONPATH'] = os.pathsep.join(
            [env['PYTHONPATH'], os.environ['PYTHONPATH']])
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)
    output = proc.stdout + proc.stderr
    if not check:
        return proc
    assert proc.returncode == 0, output[-3000:]
    assert LEFTOVER_GROUP not in output, output[-3000:]
    return proc
