"""Reading and writing the IDX format of (Fashion-)MNIST.

An IDX file starts with a 4-byte magic number: two zero bytes, a type code
(``0x08`` unsigned byte, ``0x09`` signed byte, ``0x0B`` int16, ``0x0C``
int32, ``0x0D`` float32, ``0x0E`` float64) and the number of dimensions,
followed by one big-endian uint32 per dimension and the data in C order.
Files may be gzip-compressed (``.gz``).
"""
import gzip
import os
import os.path as osp
import struct
from typing import Union

import numpy as np

_DTYPES = {
    0x08: np.dtype('>u1'),
    0x09: np.dtype('>i1'),
    0x0B: np.dtype('>i2'),
    0x0C: np.dtype('>i4'),
    0x0D: np.dtype('>f4'),
    0x0E: np.dtype('>f8'),
}
_CODES = {dt.newbyteorder('>').str: code for code, dt in _DTYPES.items()}


def _open(path: str, mode: str):
    return gzip.open(path, mode) if path.endswith('.gz') else open(path, mode)


def read_idx(path: Union[str, 'os.PathLike']) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into an array.

    Args:
        path (str | PathLike): The file.

    Returns:
        np.ndarray: The array in native byte order.

    Raises:
        ValueError: The file is not a valid IDX file; the message names it.
    """
    path = str(path)
    with _open(path, 'rb') as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f'{path!r} is not an IDX file (bad magic number)')
    code, ndim = data[2], data[3]
    if code not in _DTYPES:
        raise ValueError(f'{path!r}: unknown IDX type code 0x{code:02X}')
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f'{path!r}: truncated IDX header')
    shape = struct.unpack(f'>{ndim}I', data[4:header])
    dtype = _DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f'{path!r}: IDX header announces shape {shape} '
                         f'({expected} bytes) but {len(data) - header} bytes '
                         'follow it')
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder('='))


def write_idx(array: np.ndarray, path: Union[str, 'os.PathLike']) -> None:
    """Write an array as an IDX file (gzip-compressed if ``path`` ends with
    ``.gz``).

    Args:
        array (np.ndarray): uint8, int8, int16, int32, float32 or float64.
        path (str | PathLike): The destination.
    """
    path = str(path)
    big = np.asarray(array).astype(array.dtype.newbyteorder('>'))
    code = _CODES.get(big.dtype.str)
    if code is None:
        raise ValueError(f'dtype {array.dtype} cannot be stored as IDX')
    header = bytes([0, 0, code, big.ndim]) + struct.pack(
        f'>{big.ndim}I', *big.shape)
    if path.endswith('.gz'):
        # mtime=0 keeps the output byte-identical across runs.
        with open(path, 'wb') as raw, gzip.GzipFile(
                fileobj=raw, mode='wb', mtime=0,
                filename=osp.basename(path)[:-3]) as f:
            f.write(header + big.tobytes())
    else:
        with open(path, 'wb') as f:
            f.write(header + big.tobytes())
