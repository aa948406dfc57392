"""The reference pipeline the C library must reproduce, written with torch and OpenCV.

Nothing here shares code with the C core: the network is rebuilt in torch (NCHW) from the
weights of a gcam file, the gradient comes from autograd, and the pixels from OpenCV.

    img = load_rgb("cat.png")                          # uint8 (H, W, 3) RGB
    x = preprocess(img, model)                         # (h, w, 3) float64, tensor order
    r = gradcam(model, x, classes=[3, 7], modes=("logit", "softmax"), dtype=torch.float64)
    r.logits, r.probs, r.maps[("logit", 3)].grad / .cam_raw / .cam / .raw_max
    over = overlay(img, r.maps[("logit", 3)].cam)      # uint8 (H, W, 3) RGB

Grad-CAM as the library defines it: A = the last conv's post-ReLU output (before its pool);
score = logit[c] ('logit') or softmax(logits)[c] ('softmax'); alpha_k = mean over the map of
d score / d A_k; cam_raw = ReLU(sum_k alpha_k A_k); cam = cam_raw / max (zeros if max == 0).
"""

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F


def load_rgb(path):
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def resize_input(img_rgb, model):
    """cv2.resize INTER_CUBIC of the uint8 image to the model's input size."""
    h, w = model.input_hw
    return cv2.resize(img_rgb, (w, h), interpolation=cv2.INTER_CUBIC)


def preprocess(img_rgb, model):
    """The model's input tensor (h, w, 3) float64 in the tensor's channel order:
    caffe: BGR, pixel - mean; torch: RGB, (pixel / 255 - mean) / std. mean/std as stored
    in the file (float32 values)."""
    r = resize_input(img_rgb, model).astype(np.float64)
    mean = np.array(model.mean, dtype=np.float64)
    std = np.array(model.std, dtype=np.float64)
    if model.preprocess == "caffe":
        return (r[:, :, ::-1] - mean) / std
    return (r / 255.0 - mean) / std


class TorchVGG(torch.nn.Module):
    """The gcam file's network as an ordinary torch NCHW model."""

    def __init__(self, model, dtype=torch.float64):
        super().__init__()
        self.pools = [p for _, _, p in model.convs]
        self.flatten = model.flatten
        self.convs = torch.nn.ModuleList()
        for w, b, _ in model.convs:
            conv = torch.nn.Conv2d(w.shape[2], w.shape[3], 3, padding=1)
            conv.weight.data = torch.from_numpy(np.ascontiguousarray(
                w.transpose(3, 2, 0, 1))).to(dtype)          # HWIO -> OIHW
            conv.bias.data = torch.from_numpy(b.copy()).to(dtype)
            self.convs.append(conv)
        self.denses = torch.nn.ModuleList()
        for w, b in model.denses:                             # rows as stored in the file
            lin = torch.nn.Linear(w.shape[0], w.shape[1])
            lin.weight.data = torch.from_numpy(np.ascontiguousarray(w.T)).to(dtype)
            lin.bias.data = torch.from_numpy(b.copy()).to(dtype)
            self.denses.append(lin)

    def forward(self, x_nchw):
        """-> (logits (1, K), A: last conv's post-ReLU output (1, C, h, w))"""
        a, last = x_nchw, None
        for conv, pool in zip(self.convs, self.pools):
            a = F.relu(conv(a))
            last = a
            if pool:
                a = F.max_pool2d(a, 2)
        if self.flatten == "hwc":                             # Keras: NHWC flatten
            v = a.permute(0, 2, 3, 1).reshape(1, -1)
        else:                                                 # torch: NCHW flatten
            v = torch.flatten(a, 1)
        for j, lin in enumerate(self.denses):
            v = lin(v)
            if j < len(self.denses) - 1:
                v = F.relu(v)
        return v, last


@dataclass
class CamResult:
    grad: np.ndarray     # (h, w, C) d score / d A
    cam_raw: np.ndarray  # (h, w)
    cam: np.ndarray      # (h, w) in [0, 1]
    raw_max: float


@dataclass
class Result:
    logits: np.ndarray
    probs: np.ndarray
    activation: np.ndarray   # (h, w, C)
    maps: dict               # (mode, class) -> CamResult


def gradcam(model, x_hwc, classes, modes=("logit", "softmax"), dtype=torch.float64,
            net=None):
    """One forward, then one autograd backward per (mode, class)."""
    net = net or TorchVGG(model, dtype)
    x = torch.from_numpy(np.ascontiguousarray(x_hwc.transpose(2, 0, 1))[None]).to(dtype)
    logits, A = net(x)
    probs = torch.softmax(logits, dim=1)
    maps = {}
    for mode in modes:
        for c in classes:
            score = logits[0, c] if mode == "logit" else probs[0, c]
            (g,) = torch.autograd.grad(score, A, retain_graph=True)
            alpha = g.mean(dim=(2, 3), keepdim=True)
            cam_raw = F.relu((alpha * A).sum(dim=1))[0]
            m = cam_raw.max()
            cam = cam_raw / m if m > 0 else torch.zeros_like(cam_raw)
            maps[(mode, c)] = CamResult(
                grad=g[0].permute(1, 2, 0).detach().numpy().copy(),
                cam_raw=cam_raw.detach().numpy().copy(), cam=cam.detach().numpy().copy(),
                raw_max=float(m))
    return Result(logits=logits[0].detach().numpy().copy(),
                  probs=probs[0].detach().numpy().copy(),
                  activation=A[0].permute(1, 2, 0).detach().numpy().copy(), maps=maps)


def overlay(img_rgb, cam, heat_weight=0.4, image_weight=0.9):
    """The Keras recipe's blend with OpenCV, on an RGB uint8 image; returns RGB uint8.
    heat = resize(cam, image size) bilinear; u8 = uint8(255 * heat); JET; addWeighted."""
    h, w = img_rgb.shape[:2]
    heat = cv2.resize(np.asarray(cam, dtype=np.float32), (w, h))
    heat = np.uint8(255 * heat)
    colored = cv2.applyColorMap(heat, cv2.COLORMAP_JET)                 # BGR
    bgr = cv2.cvtColor(img_rgb, cv2.COLOR_RGB2BGR)
    out = cv2.addWeighted(colored, heat_weight, bgr, image_weight, 0)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)
