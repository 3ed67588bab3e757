"""Whether this CPU's int8 kernels compute 8-bit weights exactly.

onnxruntime (MLAS) and OpenVINO (oneDNN) run a quantized convolution as
uint8 activations times int8 weights. On x86 CPUs with VNNI
(``avx512_vnni``, ``avx_vnni``) or AMX the products are summed in int32.
Without VNNI they use ``vpmaddubsw``, which adds two neighbouring products
into a *saturating* int16: with 8-bit weights two products reach
``2 * 255 * 128 = 65280`` and are clipped at ``32767``, so the deployed
model drifts from the fake-quant one it was calibrated as (on the
Fashion-MNIST ResNet-18, about 2% of the top-1 answers change).
7-bit weights (``w_qscheme.bit=7``, onnxruntime's ``reduce_range``) keep
every pair within ``2 * 255 * 64 = 32640``: exact on every x86 CPU. Other
architectures (ARM's ``sdot``) accumulate in int32.
"""
import platform
from typing import Optional, Set

#: ``/proc/cpuinfo`` flags of the x86 instructions that sum u8 x s8
#: products in int32.
VNNI_FLAGS = frozenset({'avx512_vnni', 'avx_vnni', 'amx_int8'})
#: Machine names (``platform.machine()``) of x86 CPUs.
X86_MACHINES = frozenset({'x86_64', 'amd64', 'i386', 'i686', 'x86'})
#: The widest weights whose products never saturate an int16 pair sum
#: (levels within [-64, 63]).
SATURATION_FREE_WEIGHT_BITS = 7


def cpu_flags(cpuinfo: str = '/proc/cpuinfo') -> Optional[Set[str]]:
    """The instruction-set flags of the first CPU in ``cpuinfo``.

    Args:
        cpuinfo (str): A Linux ``/proc/cpuinfo`` file.

    Returns:
        set[str] | None: The flags; None when the file cannot be read or
        has no ``flags`` line.
    """
    try:
        with open(cpuinfo) as f:
            for line in f:
                key, _, value = line.partition(':')
                if key.strip() == 'flags':
                    return set(value.split())
    except OSError:
        return None
    return None


def int8_products_saturate(cpuinfo: str = '/proc/cpuinfo',
                           machine: Optional[str] = None) -> Optional[bool]:
    """Whether CPU int8 runtimes can saturate u8 x s8 products here.

    Args:
        cpuinfo (str): The ``/proc/cpuinfo`` to read the flags from.
        machine (str, optional): The architecture; defaults to
            ``platform.machine()``.

    Returns:
        bool | None: True on an x86 CPU without VNNI (8-bit weights are not
        computed exactly: use :data:`SATURATION_FREE_WEIGHT_BITS`), False
        on an x86 CPU with VNNI or another architecture, None when the x86
        flags cannot be read.
    """
    machine = (machine or platform.machine()).lower()
    if machine not in X86_MACHINES:
        return False
    flags = cpu_flags(cpuinfo)
    if flags is None:
        return None
    return not flags & VNNI_FLAGS


__all__ = [
    'cpu_flags', 'int8_products_saturate', 'SATURATION_FREE_WEIGHT_BITS',
    'VNNI_FLAGS'
]
