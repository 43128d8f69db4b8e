# Dumps a GGUF's metadata and tensor infos as JSON using llama.cpp's own gguf-py (PYTHONPATH=<llama src>/gguf-py).
# Used by the reader agreement test. Arrays are printed in full; floats as repr-exact numbers.
import json
import math
import sys

from gguf import GGUFReader
from gguf.constants import GGUFValueType


def scalar(v, t):
    if t == GGUFValueType.STRING:
        return bytes(v).decode("utf-8", errors="replace")
    x = v.tolist()[0] if hasattr(v, "tolist") else v
    if t == GGUFValueType.BOOL:
        return bool(x)
    if isinstance(x, float):
        if math.isnan(x) or math.isinf(x):
            return repr(x)
        return x
    if t in (GGUFValueType.UINT64, GGUFValueType.INT64):
        return str(int(x))
    return int(x)


def main(path):
    r = GGUFReader(path)
    kvs = []
    for f in r.fields.values():
        if f.name.startswith("GGUF."):
            continue
        t = f.types[0]
        if t == GGUFValueType.ARRAY:
            it = f.types[-1] if len(f.types) > 1 else None
            items = [scalar(f.parts[i], it) for i in f.data] if it is not None else []
            kvs.append({"key": f.name, "type": int(t), "itemType": int(it) if it is not None else None, "value": items})
        else:
            kvs.append({"key": f.name, "type": int(t), "value": scalar(f.parts[f.data[0]], t)})
    tensors = [
        {
            "name": t.name,
            "type": int(t.tensor_type),
            "dims": [int(x) for x in t.shape],
            "fileOffset": int(t.data_offset),
            "byteSize": int(t.n_bytes),
        }
        for t in r.tensors
    ]
    json.dump({"alignment": int(r.alignment), "dataOffset": int(r.data_offset), "kvs": kvs, "tensors": tensors}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
