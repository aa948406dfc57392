#!/usr/bin/python3
"""Write a seeded random VGG directly in the gcam format, for benchmarks and tests.

    make_random.py --arch vgg16 --seed 1 OUT.gcam
    make_random.py --arch vgg16 --width-div 16 --dense 64,64 --classes 10 --input-size 112 OUT

Conv weights are He-normal (std sqrt(2 / (9 C_in))), which keeps the activations' scale
through the ReLUs; hidden dense layers likewise; the last dense layer is scaled by the
expected activation scale of the preprocessing so the logits are O(1). Biases are small
and nonzero (so a test notices a dropped bias). Same arguments, same bytes.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcamfile  # noqa: E402

ARCHS = gcamfile.VGG_CONFIGS

# rough RMS of a preprocessed natural image, which the He init carries to the last conv
INPUT_RMS = {"caffe": 60.0, "torch": 1.0}


def conv_plan(arch, width_div=1):
    """[(out_channels, pool_after)] for an arch, widths divided by width_div (at least 1)."""
    plan = []
    for v in ARCHS[arch]:
        if v == "M":
            plan[-1] = (plan[-1][0], True)
        else:
            plan.append((max(1, v // width_div), False))
    return plan


def random_vgg(arch="vgg16", seed=1, width_div=1, input_size=224, dense=(4096, 4096),
               classes=1000, preprocess="caffe"):
    """(convs, denses) in gcamfile.write_gcam's form, dense0 rows in HWC order."""
    rng = np.random.default_rng(seed)
    convs, cin = [], 3
    for oc, pool in conv_plan(arch, width_div):
        w = rng.standard_normal((3, 3, cin, oc), dtype=np.float32) * np.float32(
            np.sqrt(2.0 / (9 * cin)))
        b = (rng.uniform(0.01, 0.1, oc) * rng.choice([-1, 1], oc)).astype(np.float32)
        convs.append((w, b, pool))
        cin = oc
    hf, wf, c = gcamfile.final_shape((input_size, input_size), convs)
    nin = hf * wf * c
    denses = []
    widths = list(dense) + [classes]
    scale = INPUT_RMS[preprocess]
    for j, out in enumerate(widths):
        if j < len(widths) - 1:
            std = np.sqrt(2.0 / nin)
        else:
            std = 1.0 / (np.sqrt(nin) * scale)
        w = rng.standard_normal((nin, out), dtype=np.float32) * np.float32(std)
        b = (rng.uniform(0.01, 0.1, out) * rng.choice([-1, 1], out)).astype(np.float32)
        if j == len(widths) - 1:
            b *= np.float32(1.0 / scale) if scale > 1 else np.float32(1.0)
        denses.append((w, b))
        nin = out
    return convs, denses


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--arch", choices=sorted(ARCHS), default="vgg16")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--width-div", type=int, default=1, help="divide every conv width by N")
    ap.add_argument("--input-size", type=int, default=224)
    ap.add_argument("--dense", default="4096,4096", help="hidden dense widths, comma-separated")
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--preprocess", choices=["caffe", "torch"], default="caffe")
    ap.add_argument("--dtype", choices=["f32", "f16", "int8"], default="f32")
    ap.add_argument("--labels", action="store_true", help="embed labels class0..classN-1")
    a = ap.parse_args(argv)
    dense = [int(v) for v in a.dense.split(",") if v.strip()]
    try:
        convs, denses = random_vgg(a.arch, a.seed, a.width_div, a.input_size, dense,
                                   a.classes, a.preprocess)
        labels = [f"class{i}" for i in range(a.classes)] if a.labels else None
        sha = gcamfile.write_gcam(a.out, convs, denses, (a.input_size, a.input_size),
                                  a.preprocess, flatten="hwc", labels=labels, dtype=a.dtype)
    except gcamfile.GcamFileError as e:
        print(f"make_random.py: {e}", file=sys.stderr)
        return 2
    n = sum(w.size + b.size for w, b, _ in convs) + sum(w.size + b.size for w, b in denses)
    print(f"wrote {a.out}: {os.path.getsize(a.out)} bytes, {n} parameters, {a.dtype}, "
          f"sha256 {sha}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
