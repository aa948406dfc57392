"""An independent float64 torch oracle for every explanation method of issue 11, at any conv
layer of a gcam file's network.

Nothing here shares code with the C library: the network is rebuilt in torch (NCHW) from the
weights of a gcam file (weights/gcamfile.py), every gradient comes from autograd (one backward
gives d score / d A at every conv layer and at the input), guided backprop replaces every
ReLU's backward (convs and the dense head, as pytorch-grad-cam's GuidedBackpropReLUModel),
SmoothGrad's noise is regenerated from the PRNG docs/methods.md documents, and integrated
gradients use the quadrature it documents. The CAM formulas are tests/oracle/
make_cam_fixtures.py's (written from the papers), applied to the tensors autograd gives.

    net = Net(gcamfile.read_gcam("m.gcam"))
    x = input_tensor(img_rgb, net.model)                 # (h, w, 3) float64, tensor order
    fw = net.run(x)                                      # logits, every conv's A
    maps = explain_all(net, x, c, "softmax", gg_layers=["block4_conv3"],
                       samples=4, noise=0.15, steps=8, seed=3)   # {(method, layer): Map}

A Map holds `raw` (the map after its ReLU / aggregation, the library's raw_map), `norm`
(raw / max(raw), zeros stay zeros) and, for pixel methods, `grad` (h, w, 3): the library's
gcam_state_input_gradient().

Definitions (docs/methods.md is the contract; where it states a choice this follows it):
  - Layer names: Keras's, from the structure: block b ends at a 2x2 max-pool, conv i from 1.
  - A: a conv layer's post-ReLU output (before its pool); g = d score / d A.
  - score: logit z_c, or softmax(z)_c computed from the float64 logits.
  - CAM methods: make_cam_fixtures.cam(method, A, g) (H, W, K), raw = max(cam, 0).
  - saliency: d score / d x; guided-backprop: the same with every ReLU's backward
    g_in = g_out * [y > 0] * [g_out > 0] (Springenberg et al. 2015);
    smoothgrad: the mean of d score / d x over `samples` copies x + n, n ~ N(0, sigma^2) per
    element, sigma = noise * (max(x) - min(x)) (Smilkov et al. 2017), n from splitmix64 and
    Box-Muller as docs/methods.md gives them (smoothgrad_noise);
    integrated-gradients: (x - b) * mean_k d score / d x at b + alpha_k (x - b), b the
    preprocessed black image, alpha_k = (k + 0.5) / steps (Sundararajan et al. 2017).
    Each pixel map is reduce(grad) over the 3 channels (PIXEL_REDUCE): max |g| (Simonyan et
    al. 2014), the sum of |attribution| for integrated-gradients.
  - guided-gradcam: guided-backprop's map times the Grad-CAM norm map at `layer`, resized to
    the input bilinearly with OpenCV's half-pixel centres (Selvaraju et al. 2017, sec. 3.1),
    its gradient the guided gradient times that map, per channel.
"""

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for _p in (HERE, os.path.join(ROOT, "weights")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from make_cam_fixtures import METHODS as CAM_METHODS, cam as cam_formula  # noqa: E402

PIXEL_METHODS = ("saliency", "guided-backprop", "guided-gradcam", "smoothgrad",
                 "integrated-gradients")
ALL_METHODS = CAM_METHODS + PIXEL_METHODS


# ---- how a (h, w, 3) gradient becomes one value per pixel --------------------------------------

def reduce_max_abs(g):
    """Simonyan et al. 2014: max over the channels of |g|."""
    return g.abs().amax(dim=2)


def reduce_sum_abs(g):
    return g.abs().sum(dim=2)


PIXEL_REDUCE = {"saliency": reduce_max_abs, "guided-backprop": reduce_max_abs,
                "guided-gradcam": reduce_max_abs, "smoothgrad": reduce_max_abs,
                "integrated-gradients": reduce_sum_abs}


# ---- the network --------------------------------------------------------------------------------

class GuidedReLU(torch.autograd.Function):
    """ReLU whose backward passes only positive gradients where the input was positive."""

    @staticmethod
    def forward(ctx, x):
        y = x.clamp(min=0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (y > 0).to(g.dtype) * (g > 0).to(g.dtype)


def layer_names(model):
    """Keras names of the conv layers, from the structure (a block ends at a pool)."""
    names, b, i = [], 1, 1
    for _, _, pool in model.convs:
        names.append(f"block{b}_conv{i}")
        i += 1
        if pool:
            b, i = b + 1, 1
    return names


class Forward:
    """One forward kept with its graph: x (1, 3, h, w) leaf, logits (K,), A [conv outputs]."""

    def __init__(self, x, logits, acts):
        self.x, self.logits, self.acts = x, logits, acts
        self.probs = torch.softmax(logits, dim=0)

    def score(self, c, mode):
        if mode == "logit":
            return self.logits[c]
        if mode == "softmax":
            return self.probs[c]
        raise ValueError(mode)


class Net:
    """A gcam file's network in torch, NCHW, any dtype; weights need no gradient."""

    def __init__(self, model, dtype=torch.float64):
        self.model, self.dtype = model, dtype
        self.names = layer_names(model)
        self.convs = []
        for w, b, pool in model.convs:
            wt = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1))).to(dtype)
            self.convs.append((wt, torch.from_numpy(b.copy()).to(dtype), pool))
        self.denses = []
        dense0 = model.dense0_hwc()    # rows in HWC order: flatten NHWC, whatever the file's
        for j, (w, b) in enumerate(model.denses):
            w = dense0 if j == 0 else w
            self.denses.append((torch.from_numpy(np.ascontiguousarray(w)).to(dtype),
                                torch.from_numpy(b.copy()).to(dtype)))

    def layer_index(self, layer):
        if isinstance(layer, str):
            return self.names.index(layer)
        return layer if layer >= 0 else len(self.names) + layer

    def logits_batch(self, x_nchw, guided=False):
        """(N, 3, h, w) -> (N, K) logits and [A_i (N, C, H, W)]."""
        relu = GuidedReLU.apply if guided else F.relu
        a, acts = x_nchw, []
        for w, b, pool in self.convs:
            a = relu(F.conv2d(a, w, b, padding=1))
            acts.append(a)
            if pool:
                a = F.max_pool2d(a, 2)
        v = a.permute(0, 2, 3, 1).reshape(a.shape[0], -1)
        for j, (w, b) in enumerate(self.denses):
            v = v @ w + b
            if j < len(self.denses) - 1:
                v = relu(v)
        return v, acts

    def run(self, x_hwc, guided=False):
        x = to_nchw(x_hwc, self.dtype).requires_grad_(True)
        logits, acts = self.logits_batch(x, guided)
        return Forward(x, logits[0], acts)


def to_nchw(x_hwc, dtype=torch.float64):
    x = np.ascontiguousarray(np.asarray(x_hwc).transpose(2, 0, 1))[None]
    return torch.from_numpy(x).to(dtype)


def f32(a):
    """float64 values rounded to float32 (what the library's tensors hold), as float64."""
    return np.asarray(a, np.float64).astype(np.float32).astype(np.float64)


def input_tensor(img_rgb, model):
    """The preprocessed input as the library computes it (float32), widened to float64: the
    reference pipeline's OpenCV resize + preprocessing (tests/oracle/reference.py)."""
    import reference
    return reference.preprocess(img_rgb, model).astype(np.float32).astype(np.float64)


def black_tensor(model):
    """The preprocessed black image (every pixel 0: pixel - mean, or (0 / 255 - mean) / std),
    in the tensor's channel order, as float32 values."""
    h, w = model.input_hw
    v = (0.0 - np.asarray(model.mean, np.float64)) / np.asarray(model.std, np.float64)
    return np.broadcast_to(v, (h, w, 3)).astype(np.float32).astype(np.float64)


# ---- maps ---------------------------------------------------------------------------------------

class Map:
    """raw, raw_max, norm as the library returns them; grad (pixel methods) the input
    gradient tensor; scale: the largest |value| before the ReLU (CAM methods), the size of
    the terms a raw value comes from when the ReLU leaves only a cancellation's remainder."""

    def __init__(self, raw, grad=None, scale=None):
        self.raw = np.asarray(raw, np.float64)
        m = float(self.raw.max()) if self.raw.size else 0.0
        self.raw_max = m
        self.norm = self.raw / m if m > 0 else np.zeros_like(self.raw)
        self.grad = grad
        self.scale = m if scale is None else max(m, float(scale))


def _hwc(t):
    """(1, C, H, W) -> (H, W, C) float64 tensor."""
    return t[0].permute(1, 2, 0).to(torch.float64)


def cam_maps(net, fw, c, mode, layers=None, methods=CAM_METHODS, with_input=False):
    """Every CAM method at every layer asked (default: all), from one backward; with_input
    also returns d score / d x (h, w, 3) from that same backward (saliency's gradient)."""
    idx = list(range(len(net.names))) if layers is None else [net.layer_index(l) for l in layers]
    wrt = [fw.acts[i] for i in idx] + ([fw.x] if with_input else [])
    grads = torch.autograd.grad(fw.score(c, mode), wrt, retain_graph=True)
    out = {}
    for i, g in zip(idx, grads):
        A, G = _hwc(fw.acts[i].detach()), _hwc(g)
        for m in methods:
            c = cam_formula(m, A, G)
            out[(m, net.names[i])] = Map(torch.clamp(c, min=0).numpy(),
                                         scale=float(c.abs().max()))
    if with_input:
        return out, _hwc(grads[-1])
    return out


def input_gradients(net, xs_hwc, c, mode, guided=False, batch=8):
    """d score / d x for each (h, w, 3) input of xs_hwc (a list), in batches (the score of
    each sample depends only on that sample, so the gradient of the batch's sum is theirs)."""
    out = []
    for s in range(0, len(xs_hwc), batch):
        x = torch.cat([to_nchw(v, net.dtype) for v in xs_hwc[s:s + batch]]).requires_grad_(True)
        logits, _ = net.logits_batch(x, guided)
        score = logits[:, c] if mode == "logit" else torch.softmax(logits, dim=1)[:, c]
        (g,) = torch.autograd.grad(score.sum(), x)
        out.extend(g[i].permute(1, 2, 0).to(torch.float64) for i in range(g.shape[0]))
    return out


def resize_bilinear(m, w, h):
    """OpenCV's INTER_LINEAR (half-pixel centres, edge clamp), in float64."""
    import cv2
    return cv2.resize(np.asarray(m, np.float64), (w, h), interpolation=cv2.INTER_LINEAR)


# ---- SmoothGrad's noise: the PRNG docs/methods.md documents --------------------------------------

MASK64 = (1 << 64) - 1


def splitmix64(state):
    """-> (new state, 64-bit output): Steele, Lea & Flood 2014 (Java's SplittableRandom)."""
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def smoothgrad_noise(seed, samples, n):
    """(samples, n) standard normal values, float64, as docs/methods.md gives them: one
    splitmix64 stream started at `seed` (its t-th output, t from 1, is mix(seed + t * gamma));
    each normal takes two outputs r1, r2 in turn: u1 = ((r1 >> 11) + 1) * 2^-53 in (0, 1],
    u2 = (r2 >> 11) * 2^-53, z = sqrt(-2 ln u1) cos(2 pi u2) (Box-Muller's cosine branch);
    sample k's normals are k * n .. k * n + n - 1, in the tensor's (h, w, 3) order."""
    count = samples * n
    t = np.arange(1, 2 * count + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + t * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    r = z >> np.uint64(11)
    u1 = (r[0::2] + np.uint64(1)).astype(np.float64) * (2.0 ** -53)
    u2 = r[1::2].astype(np.float64) * (2.0 ** -53)
    return (np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)).reshape(samples, n)


# ---- pixel methods ------------------------------------------------------------------------------

def pixel_grad(net, x_hwc, c, mode, method, samples=25, noise=0.15, steps=32, seed=0,
               fw=None):
    """The (h, w, 3) float64 tensor gcam_state_input_gradient() returns for `method`; fw: a
    Forward of x_hwc to reuse (guided for guided-backprop), kept with retain_graph."""
    if method in ("saliency", "guided-backprop", "guided-gradcam"):
        if fw is not None:
            (g,) = torch.autograd.grad(fw.score(c, mode), fw.x, retain_graph=True)
            return _hwc(g)
        return input_gradients(net, [x_hwc], c, mode, guided=method != "saliency")[0]
    if method == "smoothgrad":
        x = np.asarray(x_hwc, np.float64)
        sigma = float(np.float32(noise)) * (float(x.max()) - float(x.min()))
        n = smoothgrad_noise(seed, samples, x.size)
        # the noisy copies are the network's float32 inputs
        xs = [f32(x + sigma * n[s].reshape(x.shape)) for s in range(samples)]
        return sum(input_gradients(net, xs, c, mode)) / samples
    if method == "integrated-gradients":
        x = np.asarray(x_hwc, np.float64)
        b = black_tensor(net.model)
        xs = [f32(b + (k + 0.5) / steps * (x - b)) for k in range(steps)]
        return torch.from_numpy(x - b) * (sum(input_gradients(net, xs, c, mode)) / steps)
    raise ValueError(method)


def explain_all(net, x_hwc, c, mode, cam_methods=CAM_METHODS, layers=None,
                pixel_methods=PIXEL_METHODS, gg_layers=None, fw=None, fw_guided=None, **kw):
    """{(method, layer name, or None for the pixel methods that take none): Map} for one
    class and score: the CAM methods at `layers` (default all) and saliency from one
    backward of `fw` (a Forward of x_hwc, made if None), guided backprop from `fw_guided`
    (made if None), guided-gradcam at each of `gg_layers` (default the last conv), smoothgrad
    and integrated-gradients with kw (samples, noise, steps, seed)."""
    fw = fw or net.run(x_hwc)
    gg = [net.names[net.layer_index(l)] for l in (gg_layers or [-1])]
    want_gc = "guided-gradcam" in pixel_methods
    cam_layers = None if layers is None else list(dict.fromkeys(
        [net.names[net.layer_index(l)] for l in layers] + (gg if want_gc else [])))
    methods = tuple(dict.fromkeys(tuple(cam_methods) + (("gradcam",) if want_gc else ())))
    cams, g_sal = cam_maps(net, fw, c, mode, cam_layers, methods, with_input=True)
    out = {k: v for k, v in cams.items() if k[0] in cam_methods and (
        layers is None or k[1] in [net.names[net.layer_index(l)] for l in layers])}
    grads = {"saliency": g_sal}
    h, w = net.model.input_hw
    for m in pixel_methods:
        key = "guided-backprop" if m == "guided-gradcam" else m
        if key not in grads:
            if key == "guided-backprop":
                fw_guided = fw_guided or net.run(x_hwc, guided=True)
            grads[key] = pixel_grad(net, x_hwc, c, mode, key, fw=fw_guided
                                    if key == "guided-backprop" else None, **kw)
        g = grads[key]
        if m != "guided-gradcam":
            out[(m, None)] = Map(PIXEL_REDUCE[m](g).numpy(), grad=g.numpy())
            continue
        for layer in gg:
            cam = resize_bilinear(cams[("gradcam", layer)].norm, w, h)
            out[(m, layer)] = Map(PIXEL_REDUCE[m](g).numpy() * cam, grad=g.numpy())
    return out


# ---- comparisons ---------------------------------------------------------------------------------

def cam_error(ours_norm, ref):
    """CAM maps: max |ours - ref| of the normalised maps."""
    return float(np.max(np.abs(np.asarray(ours_norm, np.float64) - ref.norm)))


def pixel_error(ours_raw, ref):
    """Pixel maps: max |ours - ref| of the raw maps relative to the reference's max."""
    scale = float(np.max(np.abs(ref.raw)))
    d = float(np.max(np.abs(np.asarray(ours_raw, np.float64) - ref.raw)))
    return d / scale if scale > 0 else d
