"""safetensors for the tools' Python scripts, with numpy only (Debian 12 packages no python3-safetensors).

The format: a little-endian u64 header length, a JSON header (name -> dtype, shape, data_offsets;
padded with spaces to 8 bytes), then the raw little-endian data.
"""
import json
import struct

import numpy as np

DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32, "U8": np.uint8}


def read_safetensors(path):
    """name -> numpy array (read-only views of the file's bytes); each tensor is read on its own, so a
    multi-GB checkpoint is never held twice."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        out = {}
        for name, e in header.items():
            if name == "__metadata__":
                continue
            b0, b1 = e["data_offsets"]
            f.seek(8 + n + b0)
            out[name] = np.frombuffer(f.read(b1 - b0), dtype=DTYPES[e["dtype"]]).reshape(e["shape"])
        return out


def write_safetensors(path, tensors):
    """Every tensor as float32."""
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a, dtype=np.float32)
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
