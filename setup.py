"""Installation of mmrazor."""
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_requirements(name: str) -> list:
    """Read ``requirements/<name>.txt`` into a list of requirement strings.

    Args:
        name (str): ``'runtime'``, ``'tests'`` or ``'optional'``.

    Returns:
        list[str]: The requirements, comments and blank lines dropped.
    """
    path = osp.join(HERE, 'requirements', f'{name}.txt')
    with open(path) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line and not line.startswith('-')]


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
    install_requires=read_requirements('runtime'),
    extras_require={
        'tests': tests,
        'optional': optional,
        'all': tests + optional,
    },
    classifiers=[
        'Programming Language :: Python :: 3',
        'License :: OSI Approved :: Apache Software License',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
    zip_safe=False,
)
