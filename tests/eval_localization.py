#!/usr/bin/python3
"""How well do the small model's Grad-CAM heatmaps point at the article? (issue 5)

On the committed held-out set (tests/fixtures/heldout: cluttered Fashion-MNIST images made
from the t10k set, never trained on), through our C library (the `gcam` CLI, default) or
through torch (autograd Grad-CAM on the same .pth, `--engine torch`), it measures:

  accuracy     top-1 over all images;
  pointing     the Grad-CAM paper's pointing game: the argmax of the map, upsampled to the
               image size with cv2.resize (bilinear), falls inside the article's box;
  box          the paper's localisation: threshold the upsampled map at 15% of its max,
               take the bounding box of the largest 8-connected region
               (cv2.connectedComponentsWithStats), IoU with the true box >= 0.5.
Pointing and box are scored on the correctly classified images (the explained class is
then the true one); the same numbers on all images, explaining the true class, are
printed too. Baselines, scored on the same images:
  centre       the image centre as the point; as the box, a square centred in the image
               with the area of the mean Grad-CAM box;
  random map   a uniform random map of the CAM's size (numpy seed 0), same pipeline.

`--check` asserts the thresholds below (the measured numbers minus a margin of a few
images) and exits 1 when one is missed.

Usage:
  /usr/bin/python3 tests/eval_localization.py [--engine cli|torch] [--gcam build/gcam]
                                              [--weights W] [--check]
"""
import argparse
import json
import os
import subprocess
import sys

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "data"))
import cluttered_fashion as cf  # noqa: E402

HELDOUT = os.path.join(ROOT, "tests", "fixtures", "heldout")
WEIGHTS = {"cli": os.path.join(ROOT, "weights", "small", "fashion_vgg.gcam"),
           "torch": os.path.join(ROOT, "weights", "small", "fashion_vgg.pth")}

# --check thresholds. Measured with weights/small/fashion_vgg.gcam (the 16p,32p,64,64p,
# 128,128p network) on the 300 committed images, identical through the CLI and through
# torch: accuracy 0.8533 (256/300); on the 256 correct ones, pointing 0.9883 (253/256),
# box IoU>=0.5 0.7031 (180/256); best baselines: centre point 0.4727, centre box 0.0547.
# The margins (about 7 images each) allow a few images to flip (numerical noise of another
# backend, a re-trained model must still clear them); pointing stays >= 0.95 (issue 5).
THRESHOLDS = {
    "accuracy": 0.83,
    "pointing": 0.96,
    "box_iou50": 0.67,
    # Grad-CAM must beat the best baseline by this much (rates, on the same images).
    "pointing_over_baseline": 0.45,
    "box_over_baseline": 0.60,
}


class Explainer:
    """explain(path, cls) -> (top-1 class, CAM (h, w) float32 in [0, 1] divided by its max)."""


class TorchExplainer(Explainer):
    def __init__(self, weights):
        import torch
        sys.path.insert(0, os.path.join(ROOT, "weights"))
        import train_small
        torch.set_num_threads(1)
        self.torch, self.ts = torch, train_small
        self.model = train_small.load_model(weights)
        self.size = cf.SIZE

    def explain(self, path, cls):
        torch = self.torch
        rgb = cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        if rgb.shape[:2] != (self.size, self.size):
            rgb = cv2.resize(rgb, (self.size, self.size), interpolation=cv2.INTER_CUBIC)
        x = self.ts.to_tensor(rgb[None])
        logits, act = self.model.forward_cam(x)
        act.retain_grad()
        logits[0, cls].backward()
        w = act.grad[0].mean(dim=(1, 2))
        cam = torch.relu((w[:, None, None] * act[0]).sum(0)).detach().numpy()
        m = cam.max()
        cam = cam / m if m > 0 else cam
        return int(logits[0].argmax()), cam.astype(np.float32)


class CliExplainer(Explainer):
    def __init__(self, weights, gcam):
        self.weights, self.gcam = weights, gcam

    def explain(self, path, cls):
        cmd = [self.gcam, "explain", "--weights", self.weights, "--image", path, "--json",
               "--class", str(cls)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()}")
        out = json.loads(r.stdout)
        top = max(out["predictions"], key=lambda p: p["logit"])["index"]
        ex = [e for e in out["explanations"] if e["class"] == cls]
        if len(ex) != 1:
            raise RuntimeError(f"{path}: no explanation of class {cls} in the CLI's JSON")
        hm = ex[0]["heatmap"]
        cam = np.asarray(hm["data"], np.float32).reshape(hm["height"], hm["width"])
        return int(top), cam


def upsample(cam, w, h):
    return cv2.resize(cam, (w, h))  # bilinear, as the paper's pipeline and our overlay


def point_of(up):
    """(x, y) of the map's max, or None for an all-zero map (it points nowhere)."""
    if not up.max() > 0:
        return None
    y, x = np.unravel_index(int(np.argmax(up)), up.shape)
    return int(x), int(y)


def box_of(up, frac=0.15):
    """Box (x0, y0, x1, y1), exclusive, of the largest region >= frac * max; None if all zero."""
    m = up.max()
    if not m > 0:
        return None
    mask = (up >= frac * m).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    best = 1 + int(np.argmax(stats[1:n, cv2.CC_STAT_AREA]))
    x, y, w, h = (int(stats[best, k]) for k in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP,
                                                 cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
    return x, y, x + w, y + h


def inside(pt, box):
    return pt is not None and box[0] <= pt[0] < box[2] and box[1] <= pt[1] < box[3]


def iou(a, b):
    if a is None:
        return 0.0
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def evaluate(explainer, rows):
    rng = np.random.default_rng(0)
    recs = []
    for path, label, box in rows:
        top, cam = explainer.explain(path, label)
        h, w = cv2.imread(path, cv2.IMREAD_UNCHANGED).shape[:2]
        up = upsample(cam, w, h)
        rnd = upsample(rng.random(cam.shape, dtype=np.float32), w, h)
        recs.append(dict(correct=top == label, w=w, h=h, box=box,
                         point=inside(point_of(up), box), pbox=box_of(up),
                         rpoint=inside(point_of(rnd), box), rbox=box_of(rnd)))
    return recs


def summarise(recs):
    def rates(sel):
        n = len(sel)
        if n == 0:
            return None
        pboxes = [r["pbox"] for r in sel if r["pbox"] is not None]
        area = np.mean([(b[2] - b[0]) * (b[3] - b[1]) for b in pboxes]) if pboxes else 0.0
        side = np.sqrt(area)
        out = {"n": n}
        ious = [iou(r["pbox"], r["box"]) for r in sel]
        out["gradcam"] = (np.mean([r["point"] for r in sel]), np.mean([v >= 0.5 for v in ious]),
                          np.mean(ious))
        cious = []
        cpts = []
        for r in sel:
            cx, cy = r["w"] / 2.0, r["h"] / 2.0
            cb = (int(round(cx - side / 2)), int(round(cy - side / 2)),
                  int(round(cx + side / 2)), int(round(cy + side / 2)))
            cious.append(iou(cb, r["box"]))
            cpts.append(inside((r["w"] // 2, r["h"] // 2), r["box"]))
        out["centre"] = (np.mean(cpts), np.mean([v >= 0.5 for v in cious]), np.mean(cious))
        rious = [iou(r["rbox"], r["box"]) for r in sel]
        out["random map"] = (np.mean([r["rpoint"] for r in sel]),
                             np.mean([v >= 0.5 for v in rious]), np.mean(rious))
        out["mean_box_side"] = side
        return out

    return {"accuracy": np.mean([r["correct"] for r in recs]), "n": len(recs),
            "correct": rates([r for r in recs if r["correct"]]), "all": rates(recs)}


def print_table(s, title):
    c = s["correct"]
    print(f"{title}: accuracy {s['accuracy']:.4f} ({int(round(s['accuracy'] * s['n']))}/"
          f"{s['n']}); localisation on the {c['n']} correctly classified images "
          f"(centre box side {c['mean_box_side']:.1f} px)")
    print(f"  {'method':<12} {'pointing':>9} {'IoU>=0.5':>9} {'mean IoU':>9}")
    for k in ("gradcam", "centre", "random map"):
        p, b, m = c[k]
        print(f"  {k:<12} {p:9.4f} {b:9.4f} {m:9.4f}")
    p, b, m = s["all"]["gradcam"]
    print(f"  (all {s['n']} images, explaining the true class: gradcam pointing {p:.4f}, "
          f"IoU>=0.5 {b:.4f}, mean IoU {m:.4f})")


def check(s):
    c = s["correct"]
    got = {"accuracy": s["accuracy"], "pointing": c["gradcam"][0], "box_iou50": c["gradcam"][1],
           "pointing_over_baseline": c["gradcam"][0] - max(c["centre"][0], c["random map"][0]),
           "box_over_baseline": c["gradcam"][1] - max(c["centre"][1], c["random map"][1])}
    failed = 0
    for k, lo in THRESHOLDS.items():
        ok = got[k] >= lo
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {k:<24} {got[k]:.4f} >= {lo:.4f}")
    return failed


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", choices=("cli", "torch"), default="cli")
    ap.add_argument("--gcam", default=os.path.join(ROOT, "build", "gcam"),
                    help="the CLI binary (engine cli)")
    ap.add_argument("--weights", help="default: weights/small/fashion_vgg.gcam (cli) or "
                    ".pth (torch)")
    ap.add_argument("--heldout", default=HELDOUT)
    ap.add_argument("--limit", type=int, default=0, help="only the first N images")
    ap.add_argument("--check", action="store_true", help="exit 1 below the thresholds")
    args = ap.parse_args(argv)

    weights = args.weights or WEIGHTS[args.engine]
    if not os.path.exists(weights):
        print(f"eval_localization: no weights file {weights}", file=sys.stderr)
        return 2
    if args.engine == "cli":
        if not os.access(args.gcam, os.X_OK):
            print(f"eval_localization: no CLI at {args.gcam} (build it, or pass --gcam)",
                  file=sys.stderr)
            return 2
        explainer = CliExplainer(weights, args.gcam)
    else:
        explainer = TorchExplainer(weights)
    rows = cf.read_heldout(args.heldout)
    if args.limit:
        rows = rows[:args.limit]
    s = summarise(evaluate(explainer, rows))
    print_table(s, f"{args.engine} ({os.path.relpath(weights, ROOT)})")
    if args.check:
        failed = check(s)
        print(f"{len(THRESHOLDS) - failed} passed, {failed} failed")
        return 1 if failed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
