#!/usr/bin/python3
"""The peers' copies of one gcam VGG file, and torch's reference Grad-CAM.

    make_models.py export GCAM OUTDIR    tfjs/ raw float32 tensors + manifest.json,
                                         vgg_forward.onnx, vgg_gradcam.onnx
    make_models.py torchref GCAM JOB.json OUT.json
                                         torch autograd's logits, gradients, Grad-CAMs

Weights come from weights/gcamfile.py (the project's reader), so every engine runs the same
numbers. Inputs are already preprocessed ("caffe": BGR minus the mean), (H, W, 3) float32,
the tensor our C core builds from the RGBA image.

vgg_gradcam.onnx holds no autograd: torch.onnx exports no backward, so the module's forward
writes the backward out by hand, the same chain our C core runs: seed row W2[:, c],
through dense1's and dense0's ReLU masks and transposes (matrix-vector products against the
stored (IN, OUT) matrices, so ORT keeps one copy of each), then pool5's backward as
a scatter to the indices of the forward's MaxPool (first max of a window on ties, as
torch and as our core), then channel weights = spatial mean, map = ReLU(sum w * A) / max.
The torchref command checks this hand-written graph against torch's own autograd.
"""

import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "weights"))
import gcamfile  # noqa: E402

OPSET = 13


class Vgg(torch.nn.Module):
    """The gcam network in torch, NCHW, dense0 fed in HWC order (the file's, after
    dense0_hwc()). forward(x) -> logits; with gradcam=True, forward(x, cls) -> (logits,
    gradient of logit[cls] w.r.t. the last conv's output, normalized map)."""

    def __init__(self, m, gradcam=False):
        super().__init__()
        self.gradcam = gradcam
        self.pools = [p for _, _, p in m.convs]
        self.cw = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1))))
             for w, _, _ in m.convs])                       # HWIO -> OIHW
        self.cb = torch.nn.ParameterList([torch.nn.Parameter(torch.from_numpy(b))
                                          for _, b, _ in m.convs])
        dense = [(m.dense0_hwc(), m.denses[0][1])] + list(m.denses[1:])
        self.dw = torch.nn.ParameterList([torch.nn.Parameter(torch.from_numpy(w)) for w, _ in dense])
        self.db = torch.nn.ParameterList([torch.nn.Parameter(torch.from_numpy(b)) for _, b in dense])

    def features(self, x):
        """-> (last conv's post-ReLU output A, pooled output, pool indices or None)"""
        n = len(self.cw)
        for i in range(n - 1):
            x = F.relu(F.conv2d(x, self.cw[i], self.cb[i], padding=1))
            if self.pools[i]:
                x = F.max_pool2d(x, 2, 2)
        a = F.relu(F.conv2d(x, self.cw[n - 1], self.cb[n - 1], padding=1))
        if not self.pools[n - 1]:
            return a, a, None
        if self.gradcam:
            p, idx = F.max_pool2d(a, 2, 2, return_indices=True)
            return a, p, idx
        return a, F.max_pool2d(a, 2, 2), None

    def head(self, p):
        """-> (logits, pre-activations of the hidden dense layers)"""
        v = p.permute(0, 2, 3, 1).reshape(1, -1)             # HWC flatten, as the file
        pre = []
        for j in range(len(self.dw)):
            v = torch.matmul(v, self.dw[j]) + self.db[j]
            if j < len(self.dw) - 1:
                pre.append(v)
                v = F.relu(v)
        return v, pre

    def forward(self, x, cls=None):
        a, p, idx = self.features(x)
        logits, pre = self.head(p)
        if not self.gradcam:
            return logits
        # backward of logits[cls] by hand: g = W_last[:, cls], then (W_j g) * mask_j
        # class_index < 0: the top class, so one run gives the top class's map
        cls = torch.where(cls < 0, torch.argmax(logits, dim=1), cls)
        g = torch.index_select(self.dw[-1], 1, cls)           # (IN_last, 1), a column
        for j in range(len(self.dw) - 2, -1, -1):
            g = g * (pre[j] > 0).to(g.dtype).t()
            g = torch.matmul(self.dw[j], g)                    # (IN_j, 1)
        _, c, h, w = p.shape
        g = g.reshape(1, h, w, c).permute(0, 3, 1, 2)          # HWC rows -> NCHW
        if idx is not None:                                    # pool5 backward
            g = torch.zeros_like(a).flatten(2).scatter(2, idx.flatten(2), g.flatten(2))
            g = g.reshape(a.shape)
        cam = camify(a, g)
        return logits, g, cam


def camify(a, g):
    """Grad-CAM from activation A and gradient dA (1, C, H, W): ReLU(sum_c mean(dA_c) A_c),
    divided by its max; an all-zero map stays zero."""
    wts = g.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((wts * a).sum(dim=1))                        # (1, H, W)
    mx = cam.amax(dim=(1, 2), keepdim=True)
    return cam / torch.where(mx > 0, mx, torch.ones_like(mx))


def export(gcam_path, out):
    m = gcamfile.read_gcam(gcam_path)
    h, w = m.input_hw
    os.makedirs(os.path.join(out, "tfjs"), exist_ok=True)
    tensors = []
    dense = [(m.dense0_hwc(), m.denses[0][1])] + list(m.denses[1:])
    items = [(f"conv{i}.weight", wt) for i, (wt, _, _) in enumerate(m.convs)]
    items += [(f"conv{i}.bias", b) for i, (_, b, _) in enumerate(m.convs)]
    items += [(f"dense{j}.weight", wt) for j, (wt, _) in enumerate(dense)]
    items += [(f"dense{j}.bias", b) for j, (_, b) in enumerate(dense)]
    for name, arr in items:
        fn = name + ".f32"
        np.ascontiguousarray(arr, dtype="<f4").tofile(os.path.join(out, "tfjs", fn))
        tensors.append({"name": name, "file": fn, "shape": list(arr.shape)})
    manifest = {"source": os.path.abspath(gcam_path), "sha256": m.sha256,
                "input_hw": [h, w], "preprocess": m.preprocess, "mean": list(m.mean),
                "std": list(m.std), "pools": [bool(p) for _, _, p in m.convs],
                "classes": int(m.n_classes), "cam_hwc": list(m.cam_hwc), "tensors": tensors}
    with open(os.path.join(out, "tfjs", "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)

    x = torch.zeros(1, 3, h, w)
    with torch.no_grad():
        fwd = Vgg(m).eval()
        torch.onnx.export(fwd, (x,), os.path.join(out, "vgg_forward.onnx"),
                          input_names=["input"], output_names=["logits"], opset_version=OPSET,
                          do_constant_folding=False)
        del fwd
        gc = Vgg(m, gradcam=True).eval()
        torch.onnx.export(gc, (x, torch.zeros(1, dtype=torch.int64)),
                          os.path.join(out, "vgg_gradcam.onnx"),
                          input_names=["input", "class_index"],
                          output_names=["logits", "grad", "cam"], opset_version=OPSET,
                          do_constant_folding=False)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"sha256": m.sha256, "torch": torch.__version__, "opset": OPSET}, f)
    print(f"exported {gcam_path} (sha256 {m.sha256[:12]}) to {out} with torch {torch.__version__}")


def pool_windows(a):
    """Counts over the last conv's 2x2 pool windows (per channel) of the cases where pooling
    rules differ: all-zero windows, windows with a tie at a positive max, windows whose max
    is positive but <= FLT_MIN."""
    _, c, h, w = a.shape
    win = a[0, :, :h // 2 * 2, :w // 2 * 2].reshape(c, h // 2, 2, w // 2, 2)
    win = win.permute(0, 1, 3, 2, 4).reshape(c, h // 2, w // 2, 4)
    mx = win.amax(dim=3)
    ties = (win == mx[..., None]).sum(dim=3) > 1
    tiny = torch.finfo(torch.float32).tiny
    return {"windows": int(mx.numel()), "allZero": int((mx == 0).sum()),
            "positiveTies": int((ties & (mx > 0)).sum()),
            "maxBelowFltMin": int(((mx > 0) & (mx <= tiny)).sum())}


def lost_windows(a):
    """(1, C, H, W) mask: 0 inside the 2x2 pool windows whose max is <= FLT_MIN, else 1."""
    _, c, h, w = a.shape
    mx = F.max_pool2d(a, 2, 2)
    keep = (mx > torch.finfo(torch.float32).tiny).to(a.dtype)
    keep = keep.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    out = torch.ones_like(a)
    out[:, :, :keep.shape[2], :keep.shape[3]] = keep
    return out


def torchref(gcam_path, job_path, out_json):
    """torch autograd's logits, gradients and Grad-CAMs (the Keras recipe: gradient of the
    class logit w.r.t. the last conv's output), and how far the hand-written graph exported
    to ONNX is from them. job: {"inputs": [{"file": X.f32, "classes": [c, ...]}]};
    gradients go to X.c<k>.grad.f32, (H, W, C) float32."""
    torch.set_num_threads(1)
    m = gcamfile.read_gcam(gcam_path)
    h, w = m.input_hw
    with open(job_path) as f:
        job = json.load(f)
    net = Vgg(m).eval()
    hand = Vgg(m, gradcam=True).eval()
    hand.load_state_dict(net.state_dict())
    for p in list(net.parameters()) + list(hand.parameters()):
        p.requires_grad_(False)
    out = {"torch": torch.__version__, "inputs": []}
    for item in job["inputs"]:
        x = np.fromfile(item["file"], dtype="<f4").reshape(h, w, 3)
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
        with torch.no_grad():
            a, _, _ = net.features(xt)
        a.requires_grad_(True)
        logits, _ = net.head(F.max_pool2d(a, 2, 2) if net.pools[-1] else a)
        res = {"logits": logits[0].tolist(), "cams": {}, "grads": {}, "handMaxAbsDiff": {},
               "pool5": pool_windows(a.detach())}
        for c in item["classes"]:
            (g,) = torch.autograd.grad(logits[0, c], a, retain_graph=True)
            cam = camify(a.detach(), g)[0]
            res["cams"][str(c)] = cam.reshape(-1).tolist()   # (H, W) row-major
            gfile = f"{item['file']}.c{c}.grad.f32"
            g[0].permute(1, 2, 0).contiguous().numpy().astype("<f4").tofile(gfile)
            res["grads"][str(c)] = gfile
            with torch.no_grad():
                _, _, cam2 = hand(xt, torch.tensor([c]))
            res["handMaxAbsDiff"][str(c)] = float((cam2[0] - cam).abs().max())
            # what tfjs-backend-wasm's MaxPoolGrad gives: windows whose max <= FLT_MIN pass
            # no gradient
            res.setdefault("camsDropped", {})[str(c)] = \
                camify(a.detach(), g * lost_windows(a.detach())).reshape(-1).tolist()
        out["inputs"].append(res)
    with open(out_json, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "export":
        export(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "torchref":
        torchref(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
