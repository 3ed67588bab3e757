"""Dependencies point one way (docs/architecture.md): checked on the import
statements of every file, and on what a fresh interpreter loads."""
import ast
import os
import os.path as osp
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, List, Tuple

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PACKAGE = osp.join(REPO, 'mmrazor')

#: (package, packages it must not import), read: "a file of ``package``
#: imports nothing of any of these".
RULES = [
    ('mmrazor.utils', ['mmrazor.']),
    ('mmrazor.registry', [
        'mmrazor.models', 'mmrazor.core', 'mmrazor.structures',
        'mmrazor.datasets', 'mmrazor.apis'
    ]),
    ('mmrazor.structures', ['mmrazor.models', 'mmrazor.core']),
    ('mmrazor.models.mutables',
     ['mmrazor.models.mutators', 'mmrazor.models.algorithms']),
    ('mmrazor.models.task_modules.estimators',
     ['mmrazor.models.mutables', 'mmrazor.models.algorithms']),
]


def module_name(path: str) -> str:
    rel = osp.relpath(path, REPO)[:-len('.py')].replace(os.sep, '.')
    return rel[:-len('.__init__')] if rel.endswith('.__init__') else rel


def imported_names(path: str) -> Iterator[Tuple[int, str]]:
    """Every module an ``import`` statement of ``path`` names (at any depth
    of the file: functions included), relative imports made absolute."""
    name = module_name(path)
    package = name if path.endswith('__init__.py') else name.rpartition(
        '.')[0]
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split('.')
                base = parts[:len(parts) - node.level + 1]
                module = '.'.join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ''
            yield node.lineno, module
            # `from mmrazor import models` imports mmrazor.models
            for alias in node.names:
                yield node.lineno, f'{module}.{alias.name}'


def python_files() -> List[str]:
    return sorted(
        osp.join(d, f) for d, _, files in os.walk(PACKAGE) for f in files
        if f.endswith('.py'))


def breaks_rule(importer: str, imported: str, package: str,
                banned: List[str]) -> bool:
    if not (importer == package or importer.startswith(package + '.')):
        return False
    if imported == package or imported.startswith(package + '.'):
        return False
    return any(
        imported == b.rstrip('.') and not b.endswith('.')
        or imported.startswith(b if b.endswith('.') else b + '.')
        for b in banned)


def test_rule_checker_catches_what_it_should():
    # The checker itself, on names made up for it.
    assert breaks_rule('mmrazor.utils.misc', 'mmrazor.models', 'mmrazor.utils',
                       ['mmrazor.'])
    assert not breaks_rule('mmrazor.utils.misc', 'mmrazor.utils.checkpoint',
                           'mmrazor.utils', ['mmrazor.'])
    assert breaks_rule('mmrazor.structures.x', 'mmrazor.models.mutables',
                       'mmrazor.structures', ['mmrazor.models'])
    assert not breaks_rule('mmrazor.structures.x', 'mmrazor.modelsx',
                           'mmrazor.structures', ['mmrazor.models'])


@pytest.mark.parametrize('package,banned', RULES,
                         ids=[rule[0] for rule in RULES])
def test_import_statements_point_one_way(package, banned):
    offences = []
    files = [p for p in python_files() if module_name(p).startswith(package)]
    assert files, f'no files found for {package}'
    for path in files:
        importer = module_name(path)
        for lineno, imported in imported_names(path):
            if breaks_rule(importer, imported, package, banned):
                offences.append(f'{osp.relpath(path, REPO)}:{lineno} '
                                f'imports {imported}')
    assert not offences, '\n'.join(offences)


SUBPACKAGES = [
    'mmrazor.utils', 'mmrazor.registry', 'mmrazor.structures',
    'mmrazor.datasets', 'mmrazor.models', 'mmrazor.core', 'mmrazor.apis'
]
#: What a fresh interpreter may load from mmrazor when importing a package.
MAY_LOAD = {
    'mmrazor.utils': ('mmrazor.utils', 'mmrazor.version'),
    'mmrazor.registry': ('mmrazor.utils', 'mmrazor.version',
                         'mmrazor.registry'),
    'mmrazor.structures': ('mmrazor.utils', 'mmrazor.version',
                           'mmrazor.registry', 'mmrazor.structures'),
}


def _loaded_in_fresh_interpreter(package: str) -> subprocess.CompletedProcess:
    code = (f'import sys, {package}\n'
            "print(' '.join(sorted(m for m in sys.modules "
            "if m.startswith('mmrazor.'))))")
    return subprocess.run([sys.executable, '-c', code], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_each_subpackage_imports_first_in_a_fresh_interpreter():
    """Imported first, each subpackage loads (an import circle shows up as
    a partially initialised module in one of these orders), and the lower
    layers load nothing above them."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(SUBPACKAGES,
                           pool.map(_loaded_in_fresh_interpreter,
                                    SUBPACKAGES)))
    for package, proc in results.items():
        assert proc.returncode == 0, f'{package}:\n{proc.stderr[-3000:]}'
        loaded = proc.stdout.split()
        allowed = MAY_LOAD.get(package)
        if allowed is None:
            continue
        above = [
            m for m in loaded
            if not any(m == a or m.startswith(a + '.') for a in allowed)
        ]
        assert not above, f'importing {package} loaded {above}'
