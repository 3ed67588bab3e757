"""Running mmrazor's command-line tools inside a test process.

:func:`load_tool` imports a script of ``tools/`` as a module (to call its
``main(argv)``); :func:`import_benchmark` imports a script of
``benchmarks/`` (whose siblings it imports by name);
:func:`train_in_process` runs ``tools/train.py`` the way a user does (argv
and all) and returns the runner it built.
"""
import contextlib
import importlib
import importlib.util
import os.path as osp
import sys
from typing import Any, Dict, Iterator, Sequence

from mmengine.registry import DefaultScope

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


@contextlib.contextmanager
def default_scopes_restored() -> Iterator[None]:
    """Forget the default scopes created within the block: a runner makes
    its config's scope (e.g. ``mmpretrain``) current, which later tests of
    this process must not inherit."""
    before = set(DefaultScope._instance_dict)
    try:
        yield
    finally:
        for name in set(DefaultScope._instance_dict) - before:
            DefaultScope._instance_dict.pop(name)


def load_tool(relpath: str) -> Any:
    """Import ``tools/<relpath>`` as a fresh module.

    Args:
        relpath (str): E.g. ``'get_flops.py'`` or
            ``'model_converters/extract_student.py'``.

    Returns:
        module: The tool's module (its ``main`` not run).
    """
    name = osp.splitext(osp.basename(relpath))[0]
    spec = importlib.util.spec_from_file_location(
        f'mmrazor_tools_{name}', osp.join(REPO, 'tools', relpath))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def import_benchmark(name: str) -> Any:
    """Import ``benchmarks/<name>.py`` as the module ``name``, with
    ``benchmarks/`` on ``sys.path`` while it loads (benchmark scripts import
    their helper modules, e.g. ``_pruning_bench``, by name).

    Args:
        name (str): The module name, e.g. ``'pruning_vs_torch_pruning'``.

    Returns:
        module: The benchmark's module (its ``main`` not run).
    """
    bench = osp.join(REPO, 'benchmarks')
    sys.path.insert(0, bench)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(bench)


def train_in_process(config: str, work_dir: str, options: Sequence[str],
                     monkeypatch) -> Any:
    """Run ``tools/train.py CONFIG --work-dir W --cfg-options ...`` in this
    process.

    Args:
        config (str): The config file.
        work_dir (str): The work dir.
        options (Sequence[str]): ``key=value`` overrides.
        monkeypatch: pytest's fixture (argv and the runner builder are
            patched for the call only).

    Returns:
        Runner: The runner the tool built (after training).
    """
    tool = load_tool('train.py')
    built: Dict[str, Any] = {}
    build = tool.build_runner

    def build_and_keep(cfg):
        built['runner'] = build(cfg)
        return built['runner']

    monkeypatch.setattr(tool, 'build_runner', build_and_keep)
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    monkeypatch.setattr(sys, 'argv', [
        'train.py', config, '--work-dir', work_dir, '--cfg-options',
        *options
    ])
    with default_scopes_restored():
        tool.main()
    return built['runner']
