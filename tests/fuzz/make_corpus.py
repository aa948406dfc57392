#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora, tests/fuzz/corpus/<fuzzer>/ (a few KB each):
  image_decode  the small JPEG/PNG fixtures and every crafted image of tests/fixtures/hostile
  model_load    tiny valid weights files (f32/HWC with labels, f16/CHW, XNN-free) made with
                weights/gcamfile.py, and the crafted headers of tests/fixtures/hostile
  model_stream  the same files behind a 4-byte chunking seed (fuzz_model_stream.c)
  overlay       a few argument records (fuzz_overlay.c)

    /usr/bin/python3 tests/fuzz/make_corpus.py
"""
import os
import shutil
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "weights"))
import gcamfile  # noqa: E402


def tiny_models():
    """[(name, bytes)]: three small networks that exercise both flatten orders, both dtypes,
    labels, a conv without a pool and the Winograd path (C >= 3)."""
    rng = np.random.default_rng(1)

    def conv(c, oc, pool):
        return (rng.standard_normal((3, 3, c, oc)).astype(np.float32) * 0.3,
                rng.standard_normal(oc).astype(np.float32) * 0.1, pool)

    def dense(i, o):
        return (rng.standard_normal((i, o)).astype(np.float32) * 0.2,
                rng.standard_normal(o).astype(np.float32) * 0.1)

    nets = [
        ("tiny_f32_hwc_labels", dict(convs=[conv(3, 4, True), conv(4, 8, True)],
                                     denses=[dense(4 * 4 * 8, 5)], input_hw=(16, 16),
                                     labels=["a", "b", "c", "d", "e"])),
        ("tiny_f16_chw_torch", dict(convs=[conv(3, 4, True), conv(4, 4, False)],
                                    denses=[dense(4 * 4 * 4, 6), dense(6, 3)], input_hw=(8, 8),
                                    preprocess="torch", flatten="chw", dtype="f16")),
        ("tiny_1x1_direct", dict(convs=[conv(3, 2, False)], denses=[dense(2, 2)],
                                 input_hw=(1, 1))),
    ]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, kw in nets:
            path = os.path.join(tmp, name + ".gcam")
            gcamfile.write_gcam(path, **kw)
            with open(path, "rb") as f:
                out.append((name + ".gcam", f.read()))
    return out


def main():
    corpus = os.path.join(HERE, "corpus")
    for d in ("image_decode", "model_load", "model_stream", "overlay"):
        shutil.rmtree(os.path.join(corpus, d), ignore_errors=True)
        os.makedirs(os.path.join(corpus, d))
    hostile = os.path.join(ROOT, "tests", "fixtures", "hostile")
    images = [os.path.join(ROOT, "tests", "fixtures", "image", f) for f in (
        "gray_16x9.png", "gray_q90_37x23.jpg", "noise_q75_37x23.jpg", "one_1x1.png",
        "q90_420_64x48.jpg", "q95_444_64x48.jpg", "rgba_19x11.png", "rgb_37x23.png")]
    images += [os.path.join(hostile, f) for f in sorted(os.listdir(hostile))
               if f.endswith((".jpg", ".png")) and os.path.getsize(os.path.join(hostile, f)) < 8192]
    for p in images:
        shutil.copy(p, os.path.join(corpus, "image_decode", os.path.basename(p)))
    models = tiny_models()
    models += [(f, open(os.path.join(hostile, f), "rb").read())
               for f in sorted(os.listdir(hostile)) if f.endswith(".gcam") and
               os.path.getsize(os.path.join(hostile, f)) < 16384]
    for name, data in models:
        with open(os.path.join(corpus, "model_load", name), "wb") as f:
            f.write(data)
        for seed in (b"\x00\x00\x00\x00", b"\x01\x01\x13\x77"):
            with open(os.path.join(corpus, "model_stream", f"{seed.hex()}_{name}"), "wb") as f:
                f.write(seed + data)
    rng = np.random.default_rng(5)
    records = [bytes([0, 224, 0, 224, 14, 14, 0]), bytes([0, 31, 0, 200, 7, 7, 0x2f]),
               bytes([0, 2, 0, 3, 1, 1, 0x38]), bytes([0x7f, 0xff, 0, 1, 40, 1, 0xe0])]
    for k, r in enumerate(records):
        with open(os.path.join(corpus, "overlay", f"seed{k}"), "wb") as f:
            f.write(r + rng.integers(0, 256, 600, dtype=np.uint8).tobytes())
    for d in sorted(os.listdir(corpus)):
        files = os.listdir(os.path.join(corpus, d))
        size = sum(os.path.getsize(os.path.join(corpus, d, f)) for f in files)
        print(f"{d:14} {len(files):3} files {size:7} bytes")


if __name__ == "__main__":
    main()
