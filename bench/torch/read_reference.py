"""The side-by-side anchor for `Irr.Bench read` on PyTorch weights (docs/PERFORMANCE.md).

  /usr/bin/python3 bench/torch/read_reference.py make SAFETENSORS_DIR PT_DIR
      writes PT_DIR: the same tensors as SAFETENSORS_DIR (Irr.Bench read's checkpoint) saved by torch.save
      as pytorch_model-0000i-of-0000n.bin shards (< 2 GB each) with pytorch_model.bin.index.json, and config.json
  /usr/bin/python3 bench/torch/read_reference.py read PT_DIR [REPS]
      torch.load every shard and convert every tensor to float32, as Irr.Bench read does; best of REPS passes
      last line: torch_read bytes=N seconds=X gbps=Y
The safetensors file is parsed by hand (8-byte header length, JSON header, data), so no package beyond
Debian's python3-torch is needed.
"""
import json
import os
import shutil
import struct
import sys
import time

import torch

DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[b:e]), dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    return out


def make(src, dst):
    os.makedirs(dst, exist_ok=True)
    tensors = {}
    for f in sorted(os.listdir(src)):
        if f.endswith(".safetensors"):
            tensors.update(read_safetensors(os.path.join(src, f)))
    shards, current, size = [], {}, 0
    for name, t in tensors.items():
        nbytes = t.numel() * t.element_size()
        if current and size + nbytes > 2_000_000_000 // 2:
            shards.append(current)
            current, size = {}, 0
        current[name] = t
        size += nbytes
    shards.append(current)
    weight_map = {}
    for i, shard in enumerate(shards):
        name = f"pytorch_model-{i + 1:05d}-of-{len(shards):05d}.bin"
        torch.save(shard, os.path.join(dst, name))
        weight_map.update({k: name for k in shard})
    with open(os.path.join(dst, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": sum(t.numel() * t.element_size() for t in tensors.values())}, "weight_map": weight_map}, f)
    shutil.copy(os.path.join(src, "config.json"), os.path.join(dst, "config.json"))


def read(directory, reps):
    files = sorted(os.path.join(directory, f) for f in os.listdir(directory) if f.endswith(".bin"))
    nbytes = sum(os.path.getsize(f) for f in files)
    for f in files:  # warm the page cache, as Irr.Bench read does
        with open(f, "rb") as h:
            while h.read(1 << 24):
                pass
    best = float("inf")
    for r in range(reps):
        t0 = time.perf_counter()
        for f in files:
            sd = torch.load(f)
            for t in sd.values():
                t.to(torch.float32)
            del sd
        dt = time.perf_counter() - t0
        best = min(best, dt)
        print(f"  pass {r + 1}: {dt:.3f} s")
    print(f"torch_read bytes={nbytes} seconds={best:.3f} gbps={nbytes / best / 1e9:.2f}")


if __name__ == "__main__":
    torch.set_num_threads(2)
    if sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3])
    else:
        read(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 3)
