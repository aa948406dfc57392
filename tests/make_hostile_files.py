#!/usr/bin/env python3
"""Writes the crafted ("hostile") inputs of issue 9 into tests/fixtures/hostile/.

Each file is small and reproduces one finding; the C tests (tests/test_model_load.c,
tests/test_image.c) load them and expect a clean error, and the fuzzers start from them.

    /usr/bin/python3 tests/make_hostile_files.py      # rewrites the files (deterministic)
"""
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "weights"))
import gcamfile  # noqa: E402

OUT = os.path.join(HERE, "fixtures", "hostile")


def model_act_wrap(path):
    """Finding 1a: a valid, SHA-correct file whose activations are 4096*4096*64 floats
    (4 GiB): size_t arithmetic wraps that to 16 bytes in wasm32. conv0 (3->64, pool) then
    eleven 1-channel pooling convs take 2048x2048 down to 1x1; dense 1 -> 2."""
    rng = np.random.default_rng(9)
    convs = [(rng.standard_normal((3, 3, 3, 64)).astype(np.float32) * 0.1,
              np.zeros(64, np.float32), True)]
    cin = 64
    for _ in range(11):
        convs.append((rng.standard_normal((3, 3, cin, 1)).astype(np.float32) * 0.1,
                      np.zeros(1, np.float32), True))
        cin = 1
    denses = [(np.ones((1, 2), np.float32), np.zeros(2, np.float32))]
    gcamfile.write_gcam(path, convs, denses, input_hw=(4096, 4096), dtype="f16")


def header_only(input_hw, convs, denses, dtype=1):
    """A header (bytes) for a network too large to write in full: convs [(OC, pool)],
    denses [OUT]; tensors laid out as the writer would, no labels, checksum zero."""
    h, w = input_hw
    cin, shapes = 3, []
    for i, (oc, pool) in enumerate(convs):
        shapes += [(f"conv{i}.weight", (3, 3, cin, oc)), (f"conv{i}.bias", (oc,))]
        cin = oc
        if pool:
            h, w = h // 2, w // 2
    n_in = h * w * cin
    for j, out in enumerate(denses):
        shapes += [(f"dense{j}.weight", (n_in, out)), (f"dense{j}.bias", (out,))]
        n_in = out
    es = 4 if dtype == 0 else 2
    offsets, pos = [], 0
    for _, shp in shapes:
        pos = (pos + 63) // 64 * 64
        offsets.append(pos)
        pos += int(np.prod(shp, dtype=np.uint64)) * es
    header_bytes = 128 + 8 * (len(convs) + len(denses)) + 80 * len(shapes)
    payload_offset = (header_bytes + 63) // 64 * 64
    head = bytearray(gcamfile._HEADER.pack(
        gcamfile.MAGIC, gcamfile.VERSION, header_bytes, payload_offset, pos, b"\0" * 32,
        input_hw[0], input_hw[1], 3, len(convs), len(denses), denses[-1], 0, 0,
        *gcamfile.CAFFE_MEAN_BGR, 1.0, 1.0, 1.0, len(shapes), 0))
    for oc, pool in convs:
        head += struct.pack("<II", oc, 1 if pool else 0)
    for out in denses:
        head += struct.pack("<II", out, 0)
    for (name, shp), off in zip(shapes, offsets):
        dims = list(shp) + [0] * (4 - len(shp))
        head += struct.pack("<40sII4IQQ", name.encode(), dtype, len(shp), *dims, off,
                            int(np.prod(shp, dtype=np.uint64)) * es)
    head += b"\0" * (payload_offset - header_bytes)
    return bytes(head)


def model_staging_wrap(path):
    """Finding 1b: conv1 is 10923 -> 10923 channels, 9*C*OC = 1073812041 >= 2^30 elements
    (inside the 2^31 limit): the conv staging buffer's byte count wraps in wasm32 (to
    317 KB). Only the header is stored: the test streams zero bytes after it (a payload of
    zeros is valid f16), as many as it needs to run past the wrapped size."""
    head = header_only((1, 1), [(10923, False), (10923, False)], [1])
    with open(path, "wb") as f:
        f.write(head)


def model_int32_index(path):
    """A map of 4096*4096*128 = 2^31 values: the pool's int32 argmax and the kernels' int32
    offsets overflow there even on 64 bits (natively it passed every check). Header only:
    the format's limit refuses it before any payload."""
    head = header_only((4096, 4096), [(128, True)] + [(1, True)] * 11, [2])
    with open(path, "wb") as f:
        f.write(head)


def model_header_claims_gb(path):
    """Finding 5: 832 bytes of header that announce ~1.45 GB of weights and nothing else:
    streamed without a known length, nothing that large may be reserved before the payload
    arrives. VGG16 convs at 224x224, one dense 25088 -> 16384 (f16)."""
    cfg = gcamfile.VGG_CONFIGS["vgg11"]
    convs = []
    for v in cfg:
        if v == "M":
            convs[-1] = (convs[-1][0], True)
        else:
            convs.append((v, False))
    head = header_only((224, 224), convs, [16384, 10])
    with open(path, "wb") as f:
        f.write(head)


def main():
    os.makedirs(OUT, exist_ok=True)
    model_act_wrap(os.path.join(OUT, "finding1_act_wrap.gcam"))
    model_staging_wrap(os.path.join(OUT, "finding1_staging_wrap.gcam"))
    model_int32_index(os.path.join(OUT, "finding1_int32_index.gcam"))
    model_header_claims_gb(os.path.join(OUT, "finding5_header_claims_gb.gcam"))
    if len(sys.argv) < 2 or sys.argv[1] != "--models-only":
        import make_hostile_images  # noqa: F401  (written below, same folder)
        make_hostile_images.main(OUT)
    for name in sorted(os.listdir(OUT)):
        print(f"{os.path.getsize(os.path.join(OUT, name)):>9}  {name}")


if __name__ == "__main__":
    main()
