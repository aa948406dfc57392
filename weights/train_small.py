#!/usr/bin/python3
"""Train the small VGG the project ships as its default model, on cluttered Fashion-MNIST.

The exported network has VGG16's layer kinds only (3x3 conv + ReLU, 2x2 max-pool, a dense
head of Linear+ReLU, Linear+ReLU, Linear; no batch-norm, no adaptive pooling), laid out as
torchvision's `vgg` module so that the state dict keys are `features.N.*` and
`classifier.{0,3,6}.*` and weights/convert.py reads it like a torchvision VGG:

    112x112x3 -> conv16 p -> conv32 p -> conv64 conv64 p -> conv128 conv128 p -> 7x7x128
              -> 6272 -> 128 -> 128 -> 10          (Grad-CAM map: the last conv, 14x14)

Input preprocessing is torchvision's (RGB / 255, minus mean, divided by std), the one the
converter records for torch sources. Training is seeded and single-process, two torch
threads by default (measured on this 2-core machine when it was otherwise idle, 32-image
batches: this network 168 images/s with 2 threads, 75 with 1; when other jobs keep the
cores busy, 2 threads can be slower than 1: pass --threads 1 then). The data is made by
data/cluttered_fashion.py and cached under the build folder (not committed).

Usage (about 21 minutes on 2 otherwise idle cores, 20.7 min measured; the time is logged):
  /usr/bin/python3 weights/train_small.py
then, once weights/convert.py exists (the script runs it itself when it does):
  /usr/bin/python3 weights/convert.py weights/small/fashion_vgg.pth \
      weights/small/fashion_vgg.gcam --input-size 112 --labels weights/small/labels.json
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "data"))
import cluttered_fashion as cf  # noqa: E402

CFG = [16, "M", 32, "M", 64, 64, "M", 128, 128, "M"]
HIDDEN = 128
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class FashionVGG(nn.Module):
    """A narrow torchvision-style VGG: features (conv/ReLU/pool) then classifier."""

    def __init__(self, cfg=CFG, hidden=HIDDEN, n_classes=10, size=cf.SIZE, dropout=0.1):
        super().__init__()
        layers, c, pools = [], 3, 0
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
                pools += 1
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
                c = v
        if cfg[-1] != "M":
            raise ValueError("features must end with a max-pool (as VGG16's do)")
        self.features = nn.Sequential(*layers)
        f = size >> pools
        self.classifier = nn.Sequential(
            nn.Linear(c * f * f, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, n_classes))
        self.last_conv = max(i for i, m in enumerate(self.features) if isinstance(m, nn.Conv2d))
        # torchvision's VGG initialisation: without batch-norm, PyTorch's default init
        # shrinks the signal layer after layer and training stalls at chance.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))

    def forward_cam(self, x):
        """Logits and the last conv's post-ReLU output (the Grad-CAM target)."""
        act = self.features[:self.last_conv + 2](x)
        rest = self.features[self.last_conv + 2:](act)
        return self.classifier(torch.flatten(rest, 1)), act


def to_tensor(images_u8):
    """(N, H, W, 3) u8 RGB -> (N, 3, H, W) f32, torchvision preprocessing."""
    x = torch.from_numpy(images_u8).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


def load_model(path):
    model = FashionVGG()
    model.load_state_dict(torch.load(path, map_location="cpu"))
    model.eval()
    return model


def accuracy(model, images, labels, batch=256):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(images), batch):
            pred = model(to_tensor(images[i:i + batch])).argmax(1).numpy()
            correct += int((pred == labels[i:i + batch]).sum())
    return correct / len(images)


def cached(path, split, n, seed, start, log):
    if os.path.exists(path):
        d = np.load(path)
        if len(d["labels"]) == n:
            return d["images"], d["labels"]
    t = time.time()
    images, labels, _ = cf.generate(split, n, seed, start)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez(path, images=images, labels=labels)
    log(f"generated {n} {split} images (seed {seed}, from index {start}) in "
        f"{time.time() - t:.0f} s -> {path}")
    return images, labels


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-train", type=int, default=40000)
    ap.add_argument("--n-val", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cache", default=os.path.join(ROOT, "build-small", "data"))
    ap.add_argument("--out", default=os.path.join(ROOT, "weights", "small"))
    ap.add_argument("--heldout", default=os.path.join(ROOT, "tests", "fixtures", "heldout"))
    args = ap.parse_args(argv)

    os.makedirs(args.out, exist_ok=True)
    log_file = open(os.path.join(args.out, "train_log.txt"), "w")

    def log(msg):
        print(msg, flush=True)
        log_file.write(msg + "\n")
        log_file.flush()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t_start = time.time()
    log(f"torch {torch.__version__}, {torch.get_num_threads()} threads; args {vars(args)}")
    log(f"data: cluttered Fashion-MNIST {cf.SIZE}x{cf.SIZE}, article {cf.SCALE_MIN}.."
        f"{cf.SCALE_MAX} px, train seed {cf.DEFAULT_SEED['train']}")

    # Validation: later indices of the same train-set stream, never trained on.
    tr_x, tr_y = cached(os.path.join(args.cache, f"train_{args.n_train}.npz"), "train",
                        args.n_train, cf.DEFAULT_SEED["train"], 0, log)
    va_x, va_y = cached(os.path.join(args.cache, f"val_{args.n_val}.npz"), "train",
                        args.n_val, cf.DEFAULT_SEED["train"], 10_000_000, log)

    model = FashionVGG()
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: features {CFG}, classifier {HIDDEN}-{HIDDEN}-10, {n_params} parameters")
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=1e-5)
    steps = args.epochs * (args.n_train // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps,
                                                pct_start=0.15)
    t_train = time.time()
    for epoch in range(args.epochs):
        model.train()
        order = rng.permutation(args.n_train)
        loss_sum, correct, seen = 0.0, 0, 0
        for b in range(args.n_train // args.batch):
            idx = np.sort(order[b * args.batch:(b + 1) * args.batch])
            xb = tr_x[idx]
            flip = rng.random(len(idx)) < 0.5  # left-right mirror: clothes stay clothes
            xb = np.where(flip[:, None, None, None], xb[:, :, ::-1], xb)
            x, y = to_tensor(np.ascontiguousarray(xb)), torch.from_numpy(tr_y[idx])
            out = model(x)
            loss = F.cross_entropy(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss) * len(idx)
            correct += int((out.argmax(1) == y).sum())
            seen += len(idx)
        val = accuracy(model, va_x, va_y)
        log(f"epoch {epoch + 1}/{args.epochs}: loss {loss_sum / seen:.4f}, train acc "
            f"{correct / seen:.4f}, val acc {val:.4f}, {time.time() - t_train:.0f} s")
    train_s = time.time() - t_train
    log(f"training time {train_s:.0f} s ({train_s / 60:.1f} min); total with data "
        f"{time.time() - t_start:.0f} s")

    model.eval()
    pth = os.path.join(args.out, "fashion_vgg.pth")
    torch.save(model.state_dict(), pth)
    labels_path = os.path.join(args.out, "labels.json")
    with open(labels_path, "w") as f:
        json.dump(cf.LABELS, f, indent=1)
        f.write("\n")
    log(f"saved {pth} ({os.path.getsize(pth)} bytes), {labels_path}")

    if os.path.exists(os.path.join(args.heldout, "labels.csv")):
        import cv2
        rows = cf.read_heldout(args.heldout)
        hx = np.stack([cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB) for p, _, _ in rows])
        hy = np.array([lab for _, lab, _ in rows])
        log(f"held-out accuracy (torch, {len(rows)} committed images): "
            f"{accuracy(model, hx, hy):.4f}")

    convert = os.path.join(ROOT, "weights", "convert.py")
    if os.path.exists(convert):
        gcam = os.path.join(args.out, "fashion_vgg.gcam")
        cmd = [sys.executable, convert, pth, gcam, "--input-size", str(cf.SIZE),
               "--labels", labels_path]
        r = subprocess.run(cmd)
        log(f"{' '.join(cmd)} -> exit {r.returncode}")
    else:
        log("weights/convert.py not there yet: convert later (see the docstring)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
