"""Installation of mmrazor.

mmcv comes in two flavours that provide the same ``mmcv`` package: mmcv-lite
(pure Python, the default requirement) and full mmcv with compiled operators
(needed by mmdet / mmseg, built by ``bash tools/build_mmcv.sh``). When full
mmcv is already installed, mmrazor requires it instead of mmcv-lite, so that
``pip install -e ".[det,seg]"`` does not pull mmcv-lite over it. The
environment variable ``MMRAZOR_MMCV`` (``lite`` or ``full``) forces either
requirement (e.g. ``MMRAZOR_MMCV=lite`` when building a wheel to publish).
"""
import os
import os.path as osp
import subprocess
import sys

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_requirements(name: str) -> list:
    """Read ``requirements/<name>.txt`` into a list of requirement strings.

    Args:
        name (str): ``'runtime'``, ``'tests'``, ``'optional'``, ``'det'``
            or ``'seg'``.

    Returns:
        list[str]: The requirements, comments and blank lines dropped.
    """
    path = osp.join(HERE, 'requirements', f'{name}.txt')
    with open(path) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line and not line.startswith('-')]


def full_mmcv_installed() -> bool:
    """Whether the interpreter that installs mmrazor has full mmcv.

    pip runs this file in an isolated build environment that hides the
    target's packages; a child interpreter without pip's isolation variables
    sees them.

    Returns:
        bool: True if the distribution ``mmcv`` (not ``mmcv-lite``) is
        installed.
    """
    code = ('import importlib.metadata as m, sys\n'
            'try:\n    m.version("mmcv")\n'
            'except m.PackageNotFoundError:\n    sys.exit(1)\n')
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ('PYTHONPATH', 'PYTHONNOUSERSITE')
    }
    try:
        result = subprocess.run([sys.executable, '-c', code],
                                env=env,
                                capture_output=True,
                                timeout=120)
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def runtime_requirements() -> list:
    """``requirements/runtime.txt``, with ``mmcv-lite`` replaced by ``mmcv``
    (same version range) when full mmcv is installed or
    ``MMRAZOR_MMCV=full``.

    Returns:
        list[str]: The install requirements.
    """
    choice = os.environ.get('MMRAZOR_MMCV', 'auto').lower()
    if choice not in ('auto', 'lite', 'full'):
        raise ValueError(f"MMRAZOR_MMCV must be 'lite', 'full' or 'auto', "
                         f'got {choice!r}')
    full = choice == 'full' or (choice == 'auto' and full_mmcv_installed())
    requirements = read_requirements('runtime')
    if full:
        requirements = [
            'mmcv' + r[len('mmcv-lite'):] if r.startswith('mmcv-lite') else r
            for r in requirements
        ]
    return requirements


def read_version() -> str:
    """The version string from ``mmrazor/version.py`` without importing it.

    Returns:
        str: The version.
    """
    scope: dict = {}
    with open(osp.join(HERE, 'mmrazor', 'version.py')) as f:
        exec(compile(f.read(), 'mmrazor/version.py', 'exec'), scope)
    return scope['__version__']


with open(osp.join(HERE, 'README.md'), encoding='utf-8') as f:
    long_description = f.read()

tests = read_requirements('tests')
optional = read_requirements('optional')
det = read_requirements('det')
seg = read_requirements('seg')

setup(
    name='mmrazor',
    version=read_version(),
    description='OpenMMLab-style model compression: NAS, pruning and '
    'knowledge distillation on mmengine',
    long_description=long_description,
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    python_requires='>=3.9',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'benchmarks',
                                    'docs', 'data')),
    include_package_data=True,
    install_requires=runtime_requirements(),
    extras_require={
        'tests': tests,
        'optional': optional,
        'det': det,
        'seg': seg,
        # dict.fromkeys: drop duplicates, keep the order
        'all': list(dict.fromkeys(tests + optional + det + seg)),
    },
    classifiers=[
        'Programming Language :: Python :: 3',
        'License :: OSI Approved :: Apache Software License',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
    zip_safe=False,
)
