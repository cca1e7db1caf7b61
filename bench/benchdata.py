"""Data readers shared by the Python side of the benches."""
import gzip

import numpy as np


def idx_u8(path):
    """A gzip-compressed uint8 IDX file (MNIST's format) as a 2-D uint8 array: the
    first dimension counts the records, the others flattened make the vector."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\0\0" or data[2] != 0x08:
        raise ValueError("%s: not a uint8 IDX file" % path)
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return arr.reshape(shape[0], -1)


def idx_f32(path):
    """idx_u8 as contiguous float32 (what FAISS wants)."""
    return np.ascontiguousarray(idx_u8(path).astype(np.float32))
