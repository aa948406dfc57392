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

Every method (issue 11): `--methods all` (or a comma-separated list; engine cli) explains
with each method of `gcam explain --method` (CAM methods at the default layer, the last
conv; pixel methods at the input size) and scores each map the same way; `--faithfulness`
adds, per method, the deletion and insertion AUCs of the class probability (Petsiuk et al.
2018) from the CLI's `--metric` (32 steps, blur baseline: lower deletion and higher
insertion are better). The baselines' AUCs come from tests/oracle/methods.py's torch
network and this file's deletion_insertion(), written from src/evaluate.c's definition
(map resized bilinearly to the input, pixels most salient first, ties by index, a Gaussian
blur of radius 5 and sigma 5 in the preprocessed space, renormalised at the border); the
script prints how far that torch curve is from the CLI's on the Grad-CAM maps. The centre
baseline's map for deletion/insertion is the distance to the image centre (nearest first).
The table is printed in markdown.

Usage:
  /usr/bin/python3 tests/eval_localization.py [--engine cli|torch] [--gcam build/gcam]
                                              [--weights W] [--check]
  /usr/bin/python3 tests/eval_localization.py --methods all [--faithfulness] [--limit N]
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
# `--methods all` on the same 256 images (the CLI after issue 11, default layer = last conv,
# smoothgrad 25 samples, integrated-gradients 32 steps): Grad-CAM unchanged (pointing 0.9883,
# box 0.7031); pointing 0.95-1.0 for every method but smoothgrad (0.8398); box IoU>=0.5 from
# 0.0273 (guided-gradcam: a pixel map's 15% region is scattered) to 0.8047 (gradcam++).
THRESHOLDS = {
    "accuracy": 0.83,
    "pointing": 0.96,
    "box_iou50": 0.67,
    # Grad-CAM must beat the best baseline by this much (rates, on the same images).
    "pointing_over_baseline": 0.45,
    "box_over_baseline": 0.60,
}


ALL_METHODS = ("gradcam", "hirescam", "gradcam-elementwise", "gradcam++", "xgradcam",
               "layercam", "eigencam", "eigengradcam", "saliency", "guided-backprop",
               "guided-gradcam", "smoothgrad", "integrated-gradients")


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
    def __init__(self, weights, gcam, methods=None, metrics=()):
        self.weights, self.gcam = weights, gcam
        self.methods, self.metrics = methods, tuple(metrics)

    def _run(self, path, cls, metric=None):
        cmd = [self.gcam, "explain", "--weights", self.weights, "--image", path, "--json",
               "--class", str(cls)]
        if self.methods:
            cmd += ["--method", ",".join(self.methods)]
        if metric:
            cmd += ["--metric", metric]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()}")
        out = json.loads(r.stdout)
        top = max(out["predictions"], key=lambda p: p["logit"])["index"]
        ex = [e for e in out["explanations"] if e["class"] == cls]
        if not ex or (not self.methods and len(ex) != 1):
            raise RuntimeError(f"{path}: no explanation of class {cls} in the CLI's JSON")
        return int(top), ex

    def explain(self, path, cls):
        top, ex = self._run(path, cls)
        hm = ex[0]["heatmap"]
        return top, np.asarray(hm["data"], np.float32).reshape(hm["height"], hm["width"])

    def explain_all(self, path, cls):
        """(top-1 class, {method: normalised map}, {method: {metric: AUC}})"""
        maps, aucs = {}, {}
        runs = list(self.metrics) or [None]
        for metric in runs:
            top, ex = self._run(path, cls, metric)
            for e in ex:
                m = e.get("method", "gradcam")
                if m not in maps:
                    hm = e["heatmap"]
                    maps[m] = np.asarray(hm["data"], np.float32).reshape(hm["height"],
                                                                         hm["width"])
                if metric:
                    aucs.setdefault(m, {})[metric] = float(e["metric"]["auc"])
        return top, maps, aucs


class TorchFaithfulness:
    """Deletion / insertion curves of any map, as src/evaluate.c defines them, on the gcam
    file's network rebuilt in torch (tests/oracle/methods.py): for the baselines' maps, which
    the CLI cannot take, and to check the CLI's curves on the Grad-CAM maps."""

    def __init__(self, weights, steps=32, dtype="float32", check_images=20):
        import torch
        sys.path.insert(0, os.path.join(ROOT, "weights"))
        sys.path.insert(0, os.path.join(ROOT, "tests", "oracle"))
        import gcamfile
        import methods
        import reference
        torch.set_num_threads(1)
        self.torch, self.methods, self.reference = torch, methods, reference
        self.model = gcamfile.read_gcam(weights)
        self.net = methods.Net(self.model, getattr(torch, dtype))
        self.steps, self.check_images = steps, check_images

    def tensor(self, path):
        rgb = cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        return self.reference.preprocess(rgb, self.model).astype(np.float32)

    def curves(self, x, cls, sal_map, metrics=("deletion", "insertion")):
        """{metric: (AUC, curve)} for the map sal_map (any size) on the tensor x (h, w, 3)."""
        h, w = x.shape[:2]
        sal = cv2.resize(np.asarray(sal_map, np.float32), (w, h),
                         interpolation=cv2.INTER_LINEAR).ravel()
        order = np.argsort(-sal, kind="stable")        # most salient first, ties by index
        base = blur_baseline(x)
        n, out = h * w, {}
        for metric in metrics:
            src, dst = (x, base) if metric == "deletion" else (base, x)
            cur = src.reshape(n, 3).copy()
            xs, done = [], 0
            for i in range(self.steps + 1):
                upto = n * i // self.steps
                cur[order[done:upto]] = dst.reshape(n, 3)[order[done:upto]]
                done = upto
                xs.append(cur.reshape(h, w, 3).copy())
            batch = self.torch.from_numpy(np.stack(xs).transpose(0, 3, 1, 2).copy()).to(
                self.net.dtype)
            with self.torch.no_grad():
                logits, _ = self.net.logits_batch(batch)
                p = self.torch.softmax(logits.double(), dim=1)[:, cls].numpy()
            auc = float(np.sum(0.5 * (p[:-1] + p[1:])) / self.steps)
            out[metric] = (auc, p)
        return out


def blur_baseline(x, radius=5, sigma=5.0):
    """Separable Gaussian blur of an (h, w, 3) float32 tensor: taps exp(-t^2 / 2 sigma^2),
    |t| <= radius, renormalised by the taps inside the image; rows, then columns."""
    taps = np.exp(-np.arange(-radius, radius + 1, dtype=np.float64) ** 2 / (2 * sigma * sigma))

    def one_pass(a, axis):
        n = a.shape[axis]
        a64 = np.moveaxis(a.astype(np.float64), axis, 0)
        out = np.empty_like(a64)
        for q in range(n):
            lo, hi = max(0, q - radius), min(n - 1, q + radius)
            t = taps[lo - q + radius:hi - q + radius + 1]
            out[q] = np.tensordot(t, a64[lo:hi + 1], axes=(0, 0)) / t.sum()
        return np.moveaxis(out, 0, axis).astype(np.float32)
    return one_pass(one_pass(x, 1), 0)


def centre_map(h, w):
    """The centre baseline as a map: nearer the centre is more salient."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return -((xx + 0.5 - w / 2.0) ** 2 + (yy + 0.5 - h / 2.0) ** 2)


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


def evaluate_methods(explainer, rows, faith=None):
    """Every method's map scored like evaluate()'s Grad-CAM one, with the CLI's AUCs; the
    baselines' AUCs (and the torch check of the CLI's gradcam AUCs) when faith is given."""
    rng = np.random.default_rng(0)
    recs = []
    for k, (path, label, box) in enumerate(rows):
        top, maps, aucs = explainer.explain_all(path, label)
        h, w = cv2.imread(path, cv2.IMREAD_UNCHANGED).shape[:2]
        cam_shape = maps.get("gradcam", next(iter(maps.values()))).shape
        rnd_small = rng.random(cam_shape, dtype=np.float32)
        rec = dict(correct=top == label, w=w, h=h, box=box, methods={})
        for m, cam in maps.items():
            up = upsample(cam, w, h)
            rec["methods"][m] = dict(point=inside(point_of(up), box), pbox=box_of(up),
                                     **aucs.get(m, {}))
        rnd = upsample(rnd_small, w, h)
        rec["random map"] = dict(point=inside(point_of(rnd), box), pbox=box_of(rnd))
        if faith is not None:
            x = faith.tensor(path)
            for name, mp in (("random map", rnd_small), ("centre", centre_map(*x.shape[:2]))):
                rec.setdefault(name, {}).update(
                    {k2: v[0] for k2, v in faith.curves(x, label, mp).items()})
            if "gradcam" in maps and aucs.get("gradcam") and k < faith.check_images:
                t = faith.curves(x, label, maps["gradcam"])
                rec["torch_gap"] = max(abs(t[k2][0] - aucs["gradcam"][k2]) for k2 in t)
        recs.append(rec)
        if (k + 1) % 25 == 0:
            print(f"  ... {k + 1}/{len(rows)} images", file=sys.stderr, flush=True)
    return recs


def summarise_methods(recs):
    """{'n', 'accuracy', 'rows': [(name, pointing, IoU>=0.5 rate, deletion, insertion)],
    'torch_gap'} on the correctly classified images (the explained class is the true one)."""
    sel = [r for r in recs if r["correct"]]
    names = list(sel[0]["methods"]) if sel else []
    rows = []

    def mean(vals):
        vals = [v for v in vals if v is not None]
        return float(np.mean(vals)) if vals else None
    for name in names + ["centre", "random map"]:
        get = (lambda r: r["methods"][name]) if name in names else (lambda r: r.get(name, {}))
        if name == "centre":
            side = np.sqrt(np.mean([(b[2] - b[0]) * (b[3] - b[1]) for b in
                                    (r["methods"]["gradcam"]["pbox"] for r in sel
                                     if "gradcam" in r["methods"]) if b is not None] or [0]))
            pts, ious = [], []
            for r in sel:
                cx, cy = r["w"] / 2.0, r["h"] / 2.0
                cb = (int(round(cx - side / 2)), int(round(cy - side / 2)),
                      int(round(cx + side / 2)), int(round(cy + side / 2)))
                pts.append(inside((r["w"] // 2, r["h"] // 2), r["box"]))
                ious.append(iou(cb, r["box"]))
        else:
            pts = [get(r)["point"] for r in sel]
            ious = [iou(get(r)["pbox"], r["box"]) for r in sel]
        rows.append((name, float(np.mean(pts)), float(np.mean([v >= 0.5 for v in ious])),
                     mean([get(r).get("deletion") for r in sel]),
                     mean([get(r).get("insertion") for r in sel])))
    gaps = [r["torch_gap"] for r in recs if "torch_gap" in r]
    return {"n": len(sel), "accuracy": float(np.mean([r["correct"] for r in recs])),
            "n_all": len(recs), "rows": rows, "torch_gap": max(gaps) if gaps else None,
            "n_gap": len(gaps)}


def print_methods_table(s, title):
    f = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
    print(f"{title}: accuracy {s['accuracy']:.4f} ({int(round(s['accuracy'] * s['n_all']))}/"
          f"{s['n_all']}); scores on the {s['n']} correctly classified images")
    print()
    print("| method | pointing | box IoU >= 0.5 | deletion AUC (lower better) | "
          "insertion AUC (higher better) |")
    print("|---|---|---|---|---|")
    for name, p, b, d, ins in s["rows"]:
        label = f"*{name}* (baseline)" if name in ("centre", "random map") else f"`{name}`"
        print(f"| {label} | {f(p)} | {f(b)} | {f(d)} | {f(ins)} |")
    if s["torch_gap"] is not None:
        print()
        print(f"(the baselines' AUCs by torch; on the Grad-CAM maps of the first "
              f"{s['n_gap']} images torch's AUC is within {s['torch_gap']:.2g} of the CLI's)")


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
    return check_values(got)


def check_values(got):
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
    ap.add_argument("--methods", help="engine cli: a comma-separated list of methods or all "
                    "(one table row each)")
    ap.add_argument("--faithfulness", action="store_true",
                    help="with --methods: deletion and insertion AUCs (the CLI's --metric)")
    ap.add_argument("--torch-check", type=int, default=20, metavar="N",
                    help="with --faithfulness: check the CLI's Grad-CAM curves against torch "
                    "on the first N images (default 20)")
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
    if args.methods:
        if args.engine != "cli":
            print("eval_localization: --methods needs the cli engine", file=sys.stderr)
            return 2
        methods = ALL_METHODS if args.methods == "all" else args.methods.split(",")
        explainer = CliExplainer(weights, args.gcam, methods,
                                 ("deletion", "insertion") if args.faithfulness else ())
        faith = TorchFaithfulness(weights, check_images=args.torch_check) \
            if args.faithfulness else None
        sm = summarise_methods(evaluate_methods(explainer, rows, faith))
        print_methods_table(sm, f"{args.engine} ({os.path.relpath(weights, ROOT)})")
        if args.check:
            g = {r[0]: r for r in sm["rows"]}
            base = [g["centre"], g["random map"]]
            got = {"accuracy": sm["accuracy"], "pointing": g["gradcam"][1],
                   "box_iou50": g["gradcam"][2],
                   "pointing_over_baseline": g["gradcam"][1] - max(b[1] for b in base),
                   "box_over_baseline": g["gradcam"][2] - max(b[2] for b in base)}
            failed = check_values(got)
            print(f"{len(THRESHOLDS) - failed} passed, {failed} failed")
            return 1 if failed else 0
        return 0
    s = summarise(evaluate(explainer, rows))
    print_table(s, f"{args.engine} ({os.path.relpath(weights, ROOT)})")
    if args.check:
        failed = check(s)
        print(f"{len(THRESHOLDS) - failed} passed, {failed} failed")
        return 1 if failed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
