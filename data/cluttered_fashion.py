#!/usr/bin/python3
"""Cluttered Fashion-MNIST: one tinted article on a cluttered RGB background, with its box.

Source: Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist/*.gz, idx format).
The train split draws its articles (and its clutter) from the 60k train set, the held-out
split from the 10k t10k set, so no held-out article was ever seen in training.

Each image (SIZE x SIZE RGB, uint8) is, in drawing order:
  background  a smooth colour field (a 4x4 random colour grid upsampled bicubically) plus
              grey blotches (a 16x16 grid of +-0.08, upsampled bilinearly);
  lines       1..3 straight lines, random colour, 1..2 px;
  fragments   2..4 crops (8..14 px of the 28x28 source) of *other* articles, scaled 1.5..2.5x,
              tinted, drawn at 60..100% opacity: they look like pieces of clothing but never
              like a whole one;
  article     one whole article, scaled from 28 px to S in [SCALE_MIN, SCALE_MAX] px
              (cv2.INTER_LINEAR), tinted with a random saturated colour, alpha = min(1, 2*g)
              where g is the resized grey level in 0..1, drawn last (never occluded).
The box is that of the article's visible pixels: alpha > BOX_ALPHA after placement, as
x0, y0, x1, y1 with x1, y1 exclusive (x1 - x0 is the width).

Everything is a pure function of (split, seed, index): sample i of a split uses its own
numpy Generator seeded with (seed, split id, i), so any sample can be regenerated alone and
the output does not depend on the number of samples asked for.

Usage:
  /usr/bin/python3 data/cluttered_fashion.py heldout --n 300 --out tests/fixtures/heldout
  /usr/bin/python3 data/cluttered_fashion.py train --n 40000 --out build-data/train.npz
"""
import argparse
import csv
import gzip
import os
import sys

import cv2
import numpy as np

SRC_DIR = "/usr/share/datasets/fashion-mnist"
SIZE = 112
SCALE_MIN, SCALE_MAX = 28, 70
BOX_ALPHA = 0.1
NOISE_GRID, NOISE_AMP = 16, 0.08
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
SPLITS = {"train": ("train", 1), "heldout": ("t10k", 2)}
DEFAULT_SEED = {"train": 1234, "heldout": 5678}


def read_idx(path):
    """An idx file (gzip) as a numpy array: magic 0x0000 08 nd, then nd big-endian u32 dims."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 8:
        raise ValueError(f"{path}: not an unsigned-byte idx file")
    nd = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} bytes of data, header says {dims}")
    return data.reshape(dims)


def load_source(split):
    prefix = SPLITS[split][0]
    images = read_idx(os.path.join(SRC_DIR, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(SRC_DIR, f"{prefix}-labels-idx1-ubyte.gz"))
    return images, labels


def _tint(rng, lo=0.35):
    """A random colour with at least one strong channel, in 0..1."""
    c = rng.uniform(lo, 1.0, 3)
    c[rng.integers(3)] = rng.uniform(0.85, 1.0)
    return c


def _background(rng):
    grid = rng.uniform(0.0, 0.55, (4, 4, 3)).astype(np.float32)
    bg = cv2.resize(grid, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
    # Blotches: a finer random field; smooth enough that PNG keeps a few hundred images
    # under 5 MB (per-pixel grain would cost ~2x the bytes).
    fine = rng.uniform(-NOISE_AMP, NOISE_AMP, (NOISE_GRID, NOISE_GRID, 1)).astype(np.float32)
    bg += cv2.resize(fine, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)[..., None]
    return np.clip(bg, 0.0, 1.0)


def _lines(img, rng):
    for _ in range(rng.integers(1, 4)):
        p0 = tuple(int(v) for v in rng.integers(0, SIZE, 2))
        p1 = tuple(int(v) for v in rng.integers(0, SIZE, 2))
        col = tuple(float(v) for v in _tint(rng, 0.2) * rng.uniform(0.5, 1.0))
        cv2.line(img, p0, p1, col, int(rng.integers(1, 3)), lineType=cv2.LINE_AA)


def _paste(img, grey, x, y, colour, opacity):
    """Alpha-blend a grey patch (0..1) tinted by colour at (x, y); clipped to the image.
    Returns the alpha actually drawn, in image coordinates, for the box."""
    h, w = grey.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, SIZE), min(y + h, SIZE)
    if x0 >= x1 or y0 >= y1:
        return None
    g = grey[y0 - y:y1 - y, x0 - x:x1 - x]
    a = np.minimum(1.0, 2.0 * g)[..., None] * opacity
    shade = (0.45 + 0.55 * g)[..., None] * colour[None, None, :]
    img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1.0 - a) + shade * a
    full = np.zeros((SIZE, SIZE), np.float32)
    full[y0:y1, x0:x1] = a[..., 0]
    return full


def _fragments(img, rng, src_images, src_labels, label):
    for _ in range(rng.integers(2, 5)):
        while True:
            j = int(rng.integers(len(src_images)))
            if src_labels[j] != label:
                break
        cs = int(rng.integers(8, 15))
        cx, cy = (int(v) for v in rng.integers(0, 28 - cs + 1, 2))
        crop = src_images[j, cy:cy + cs, cx:cx + cs].astype(np.float32) / 255.0
        s = max(4, int(round(cs * rng.uniform(1.5, 2.5))))
        crop = cv2.resize(crop, (s, s), interpolation=cv2.INTER_LINEAR)
        x, y = (int(v) for v in rng.integers(-s // 3, SIZE - s + s // 3, 2))
        _paste(img, crop, x, y, _tint(rng), rng.uniform(0.6, 1.0))


def make_sample(split, seed, i, src_images, src_labels):
    """Sample i of a split: (uint8 image (SIZE, SIZE, 3) RGB, label, box (x0, y0, x1, y1))."""
    rng = np.random.default_rng([seed, SPLITS[split][1], i])
    k = int(rng.integers(len(src_images)))
    label = int(src_labels[k])
    img = _background(rng)
    _lines(img, rng)
    _fragments(img, rng, src_images, src_labels, label)
    s = int(rng.integers(SCALE_MIN, SCALE_MAX + 1))
    art = cv2.resize(src_images[k].astype(np.float32) / 255.0, (s, s),
                     interpolation=cv2.INTER_LINEAR)
    x, y = (int(v) for v in rng.integers(0, SIZE - s + 1, 2))
    alpha = _paste(img, np.clip(art, 0.0, 1.0), x, y, _tint(rng, 0.5), 1.0)
    ys, xs = np.nonzero(alpha > BOX_ALPHA)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    out = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    return out, label, box


def generate(split, n, seed=None, start=0):
    """n samples from index `start`: images (n, SIZE, SIZE, 3) u8 RGB, labels (n,), boxes (n, 4)."""
    seed = DEFAULT_SEED[split] if seed is None else seed
    src_images, src_labels = load_source(split)
    images = np.empty((n, SIZE, SIZE, 3), np.uint8)
    labels = np.empty(n, np.int64)
    boxes = np.empty((n, 4), np.int32)
    for t in range(n):
        images[t], labels[t], boxes[t] = make_sample(split, seed, start + t, src_images,
                                                     src_labels)
    return images, labels, boxes


def read_heldout(folder):
    """The committed held-out set: list of (path, label, (x0, y0, x1, y1))."""
    rows = []
    with open(os.path.join(folder, "labels.csv"), newline="") as f:
        for r in csv.DictReader(f):
            box = tuple(int(r[k]) for k in ("x0", "y0", "x1", "y1"))
            rows.append((os.path.join(folder, r["file"]), int(r["label"]), box))
    return rows


def write_pngs(folder, images, labels, boxes, split, seed):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "labels.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["file", "label", "name", "x0", "y0", "x1", "y1"])
        for i, (img, lab, box) in enumerate(zip(images, labels, boxes)):
            name = f"{i:04d}.png"
            cv2.imwrite(os.path.join(folder, name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_PNG_COMPRESSION, 9])
            w.writerow([name, int(lab), LABELS[lab], *(int(v) for v in box)])
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write(
            "# Held-out cluttered Fashion-MNIST images\n\n"
            f"{len(images)} images of {SIZE}x{SIZE} RGB, generated from the t10k set by\n"
            f"`/usr/bin/python3 data/cluttered_fashion.py {split} --n {len(images)} "
            f"--seed {seed} --out <this folder>`.\n"
            "`labels.csv`: file, label (dataset order, 0 = T-shirt/top ... 9 = Ankle boot),\n"
            "name, and the article's box x0, y0, x1, y1 in pixels (x1, y1 exclusive).\n"
            "Used by tests/eval_localization.py; never used in training.\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("split", choices=sorted(SPLITS))
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--out", required=True,
                    help="a folder (PNG files + labels.csv) or a .npz file")
    args = ap.parse_args(argv)
    seed = DEFAULT_SEED[args.split] if args.seed is None else args.seed
    images, labels, boxes = generate(args.split, args.n, seed)
    if args.out.endswith(".npz"):
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        np.savez(args.out, images=images, labels=labels, boxes=boxes)
    else:
        write_pngs(args.out, images, labels, boxes, args.split, seed)
    print(f"{args.split}: {args.n} images, seed {seed} -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
