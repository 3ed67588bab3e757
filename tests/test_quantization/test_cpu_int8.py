"""Which CPUs compute 8-bit weights exactly, and the export's warning where
they do not."""
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from mmrazor.models.quantizers import (NativeQuantizer, cpu_flags,
                                       export_onnx, int8_products_saturate)
from mmrazor.models.quantizers import export as export_module
from qconfigs import native_qconfig

pytest.importorskip('onnx')

AVX2_ONLY = 'fpu sse sse2 ssse3 avx avx2 fma'
CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: {flags}

processor\t: 1
flags\t\t: {flags}
"""


def write_cpuinfo(tmp_path, flags):
    path = tmp_path / 'cpuinfo'
    path.write_text(CPUINFO.format(flags=flags))
    return str(path)


def test_cpu_flags_reads_the_first_flags_line(tmp_path):
    assert cpu_flags(write_cpuinfo(tmp_path, AVX2_ONLY)) == {
        'fpu', 'sse', 'sse2', 'ssse3', 'avx', 'avx2', 'fma'
    }
    assert cpu_flags(str(tmp_path / 'missing')) is None
    (tmp_path / 'empty').write_text('processor\t: 0\n')
    assert cpu_flags(str(tmp_path / 'empty')) is None


@pytest.mark.parametrize('flags, machine, expected', [
    (AVX2_ONLY, 'x86_64', True),
    (AVX2_ONLY + ' avx512f avx512bw', 'x86_64', True),
    (AVX2_ONLY + ' avx512f avx512_vnni', 'x86_64', False),
    (AVX2_ONLY + ' avx_vnni', 'AMD64', False),
    (AVX2_ONLY + ' amx_int8', 'x86_64', False),
    (AVX2_ONLY, 'aarch64', False),
])
def test_int8_products_saturate_on_x86_without_vnni(tmp_path, flags,
                                                     machine, expected):
    cpuinfo = write_cpuinfo(tmp_path, flags)
    assert int8_products_saturate(cpuinfo, machine=machine) is expected


def test_unknown_x86_flags_are_reported_as_unknown(tmp_path):
    assert int8_products_saturate(
        str(tmp_path / 'missing'), machine='x86_64') is None


class Recorder:

    def __init__(self):
        self.warnings = []

    def warning(self, message):
        self.warnings.append(message)


def calibrated_linear(bits):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 4)).eval()
    qconfig = native_qconfig(a_symmetry=False, w_bit=bits)
    prepared = NativeQuantizer(qconfig).prepare(model).eval()
    with torch.no_grad():
        prepared(torch.randn(32, 6))
    prepared.apply(torch.ao.quantization.disable_observer)
    return prepared


@pytest.mark.parametrize('saturates, bits, warned', [
    (True, 8, True),
    (True, 7, False),
    (False, 8, False),
    (None, 8, False),
])
def test_export_warns_where_8bit_weights_saturate(tmp_path, monkeypatch,
                                                  saturates, bits, warned):
    recorder = Recorder()
    monkeypatch.setattr(export_module, 'int8_products_saturate',
                        lambda: saturates)
    monkeypatch.setattr(export_module, 'MMLogger',
                        SimpleNamespace(get_current_instance=lambda: recorder))
    path = str(tmp_path / f'w{bits}.onnx')
    export_onnx(calibrated_linear(bits), torch.randn(1, 6), path)
    # per-channel symmetric range: the largest |weight| of each row sits
    # at level 2 ** (bits - 1) - 1 (127 or 63)
    import onnx
    assert export_module.widest_weight_level(onnx.load(path)) == \
        2**(bits - 1) - 1
    assert bool(recorder.warnings) is warned
    if warned:
        assert path in recorder.warnings[0]
        assert 'w_qscheme.bit=7' in recorder.warnings[0]
