"""Every explanation method of issue 11 at every conv layer against the float64 torch oracle
(tests/oracle/methods.py), through the CLI (`gcam explain --method --layer --map-out`).

Tolerances (issue 11): CAM maps within 1e-3 of the oracle after normalisation (and raw_max
within 1e-3 of the map's largest |value| before its ReLU), pixel maps within 1e-3 of the
oracle's max. Models: the reduced-width
random VGG16 (tests/fixtures/vgg_small/model.gcam: every width / 16, 224 x 224 input) and the
full-size random VGG16 (marked `full`: the 553 MB file tests/js/helpers.mjs randomVgg16()
caches in the temp folder, made here the same way when missing), both score modes, two
classes; and a saturated softmax (p_c = 0.99999994 in float32) where float32 torch's
1 - p_c is visibly wrong and the library must match float64. On the full VGG16, smoothgrad
and integrated-gradients are bounded by three times float32 torch's own error on the same
inputs instead (noisy_tolerances() says why). Also: the oracle checked against
tests/oracle/reference.py, finite differences, hooked ReLUs and IG's completeness, and the
randomization sanity check on the trained small model.

A test whose CLI lacks a flag it needs is skipped, naming the flag.
GCAM_ORACLE_REPORT=path appends one JSON line per compared map (model, method, layer, error).

Run: /usr/bin/python3 -m pytest tests/py/test_methods_oracle.py [-m "not full"]
"""

import glob
import hashlib
import json
import os
import subprocess
import tempfile

import numpy as np
import pytest

from conftest import ROOT, cli_path

import gcamfile
import methods as M

SMALL = os.path.join(ROOT, "tests", "fixtures", "vgg_small", "model.gcam")
CAM_TOL = 1e-3
PIXEL_TOL = 1e-3
# SmoothGrad / IG settings of the comparisons: few samples (each is a forward + backward)
PIX_SMALL = dict(samples=4, noise=0.2, steps=4, seed=11)
PIX_FULL = dict(samples=2, noise=0.15, steps=2, seed=5)
NOISE_KW = ("samples", "noise", "steps", "seed")


# ---- the CLI -------------------------------------------------------------------------------------

_PROBES = {"--method": "gradcam", "--layer": "0", "--map-out": None, "--samples": "2",
           "--noise": "0.1", "--steps": "2", "--seed": "1", "--metric": "deletion"}
_probed = {}


def cli_or_skip(*flags):
    """Skips the test unless the CLI exists and accepts every flag (probed once each)."""
    exe = cli_path()
    if not os.access(exe, os.X_OK):
        pytest.fail(f"{exe} not found: build the CLI first (or set GCAM_CLI)")
    for flag in flags:
        if flag not in _probed:
            with tempfile.TemporaryDirectory() as d:
                val = _PROBES[flag] or os.path.join(d, "probe.f32")
                extra = ["--method", "smoothgrad"] if flag in ("--samples", "--noise") else \
                    ["--method", "integrated-gradients"] if flag == "--steps" else []
                r = subprocess.run([exe, "explain", "--weights", SMALL, "--image", small_image(),
                                    "--class", "0", *extra, flag, val], capture_output=True,
                                   text=True, timeout=300)
            _probed[flag] = f"unknown option {flag}" not in r.stderr
        if not _probed[flag]:
            pytest.skip(f"the CLI has no {flag} yet")
    return exe


_image_cache = {}


def small_image(size=224):
    """A 224 x 224 PNG (the models' input size: no resize between us and the oracle)."""
    if size not in _image_cache:
        import cv2
        import sources
        p = os.path.join(tempfile.mkdtemp(prefix="gcam-oracle11-"), f"img{size}.png")
        # shapes with noise, never clipped: a flat region gives equal values in a 2x2 pool
        # window, where the gradient is a choice (torch takes the first; a library may take
        # another), and so do the scaled copies of integrated gradients
        img = 30 + sources.sample_image(size, size, seed=2).astype(np.int32) * 3 // 4
        img += np.random.default_rng(size).integers(-24, 25, img.shape)
        assert img.min() >= 1 and img.max() <= 254
        img = img.astype(np.uint8)
        cv2.imwrite(p, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        _image_cache[size] = (p, img)
    return _image_cache[size][0]


def image_rgb(size=224):
    small_image(size)
    return _image_cache[size][1]


def _read_map(path, entry):
    w, h = entry["map_width"], entry["map_height"]
    a = np.fromfile(path, dtype="<f4").astype(np.float64)
    assert a.size == w * h, f"{path}: {a.size} floats, JSON says {w} x {h}"
    return a.reshape(h, w)


def run_explain(exe, weights, cls, score, methods, layers, tmp, **kw):
    """{(method, layer name): (raw map (h, w) float64, JSON entry)} from one CLI run with
    comma-separated lists (one forward; --map-out is then a prefix: PREFIX.<method>.<layer>.f32,
    the pixel methods but guided-gradcam under the layer name 'input')."""
    prefix = os.path.join(str(tmp), f"m{cls}{score}")
    cmd = [exe, "explain", "--weights", str(weights), "--image", small_image(), "--json",
           "--class", str(cls), "--score", score, "--method", ",".join(methods),
           "--layer", ",".join(map(str, layers)), "--map-out", prefix]
    for k in NOISE_KW:
        if k in kw:
            cmd += [f"--{k}", str(kw[k])]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        pytest.fail(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()}")
    out = json.loads(r.stdout)
    single = len(methods) == 1 and len(layers) == 1
    res = {}
    for e in out["explanations"]:
        path = prefix if single else f"{prefix}.{e['method']}.{e['layer']}.f32"
        assert e["class"] == cls and os.path.exists(path), \
            f"{' '.join(cmd)}: no {path} (has {sorted(glob.glob(prefix + '*'))})"
        res[(e["method"], e["layer"])] = (_read_map(path, e), e)
    return res


def cli_maps(exe, weights, cls, score, pixel, layers, tmp, pix_kw):
    """The CLI's maps for every CAM method at `layers`, guided-gradcam (if in `pixel`) at
    `layers`, and the other `pixel` methods at the default layer: three runs."""
    got = run_explain(exe, weights, cls, score, M.CAM_METHODS, layers, tmp, **pix_kw)
    if "guided-gradcam" in pixel:
        os.makedirs(tmp / "gg")
        got.update(run_explain(exe, weights, cls, score, ["guided-gradcam"], layers, tmp / "gg",
                               **pix_kw))
    others = [p for p in pixel if p != "guided-gradcam"]
    if others:
        os.makedirs(tmp / "px")
        got.update(run_explain(exe, weights, cls, score, others, [layers[-1]], tmp / "px",
                               **pix_kw))
    return got


# ---- comparison ----------------------------------------------------------------------------------

def report(**row):
    p = os.environ.get("GCAM_ORACLE_REPORT")
    if p:
        with open(p, "a") as f:
            f.write(json.dumps(row) + "\n")


def compare_all(tag, got, refs, pixel_tol=None):
    """Every reference map against the CLI's; returns the failures (strings). pixel_tol:
    {method: tolerance} where it is not PIXEL_TOL."""
    bad = []
    for (m, layer), ref in refs.items():
        # the pixel methods but guided-gradcam have no layer (the CLI names it 'input')
        hits = [k for k in got if k[0] == m and (layer is None or k[1] == layer)]
        if not hits:
            bad.append(f"{tag}: the CLI gave no map for {m} at {layer}")
            continue
        raw, e = got[hits[0]]
        if raw.shape != ref.raw.shape:
            bad.append(f"{tag} {m} {layer}: map {raw.shape}, oracle {ref.raw.shape}")
            continue
        if m in M.CAM_METHODS:
            mx = float(raw.max())
            norm = raw / mx if mx > 0 else np.zeros_like(raw)
            err = M.cam_error(norm, ref)
            # raw_max relative to the map's values before its ReLU: when only a small
            # remainder of cancelling terms is positive, float32 cannot know it better
            rmax = abs(float(e["raw_max"]) - ref.raw_max) / max(ref.scale, 1e-30)
            ok = err <= CAM_TOL and rmax <= CAM_TOL
        else:
            err = M.pixel_error(raw, ref)
            rmax = abs(float(e.get("raw_max", raw.max())) - ref.raw_max) / max(ref.raw_max,
                                                                               1e-30)
            tol = (pixel_tol or {}).get(m, PIXEL_TOL)
            ok = err <= tol and rmax <= tol
        report(model=tag, method=m, layer=layer, err=err, raw_max_rel=rmax)
        if not ok:
            bad.append(f"{tag} {m} {layer}: error {err:.3g}, raw_max {rmax:.3g} relative "
                       f"(tolerance {(pixel_tol or {}).get(m, PIXEL_TOL):.3g})")
    return bad


# ---- the oracle against itself (no CLI) ----------------------------------------------------------

def test_oracle_gradcam_at_last_conv_equals_reference():
    import reference
    m = gcamfile.read_gcam(SMALL)
    net = M.Net(m)
    x = M.input_tensor(image_rgb(), m)
    fw = net.run(x)
    for score in ("logit", "softmax"):
        r = reference.gradcam(m, x, [3], (score,))
        ours = M.cam_maps(net, fw, 3, score, [-1], ("gradcam",))[("gradcam", "block5_conv3")]
        assert np.abs(ours.norm - r.maps[(score, 3)].cam).max() <= 1e-12
        assert abs(ours.raw_max - r.maps[(score, 3)].raw_max) <= 1e-12 * r.maps[
            (score, 3)].raw_max


def test_oracle_layer_names_and_sizes():
    m = gcamfile.read_gcam(SMALL)
    net = M.Net(m)
    assert net.names == ["block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2",
                         "block3_conv1", "block3_conv2", "block3_conv3", "block4_conv1",
                         "block4_conv2", "block4_conv3", "block5_conv1", "block5_conv2",
                         "block5_conv3"]
    fw = net.run(M.input_tensor(image_rgb(), m))
    cams = M.cam_maps(net, fw, 1, "logit", ["block4_conv3", "block3_conv3"], ("layercam",))
    assert cams[("layercam", "block4_conv3")].raw.shape == (28, 28)
    assert cams[("layercam", "block3_conv3")].raw.shape == (56, 56)


def test_oracle_gradients_by_finite_differences():
    """autograd's d score / d A at a middle layer and d score / d x (saliency's gradient)
    against central differences of the float64 network."""
    import torch
    m = gcamfile.read_gcam(SMALL)
    net = M.Net(m)
    x = M.input_tensor(image_rgb(), m)
    g = M.pixel_grad(net, x, 2, "softmax", "saliency").numpy()
    rng = np.random.default_rng(0)
    idx = [tuple(int(rng.integers(0, s)) for s in x.shape) for _ in range(6)]
    idx.append(np.unravel_index(int(np.argmax(np.abs(g))), g.shape))
    for i in idx:
        h = 1e-6   # the network is piecewise linear: a small step crosses no ReLU kink
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        with torch.no_grad():
            fp = torch.softmax(net.logits_batch(M.to_nchw(xp))[0][0], 0)[2]
            fm = torch.softmax(net.logits_batch(M.to_nchw(xm))[0][0], 0)[2]
        fd = float(fp - fm) / (2 * h)
        assert abs(fd - g[i]) <= 1e-6 * np.abs(g).max() + 1e-4 * abs(fd), (i, fd, g[i])


def test_oracle_guided_backprop_matches_hooked_relus():
    """The guided ReLU as a custom Function equals the other usual construction: ordinary
    ReLUs with a hook that clamps the gradient they pass back to its positive part."""
    import torch
    import torch.nn.functional as F
    m = gcamfile.read_gcam(SMALL)
    net = M.Net(m)
    x = M.input_tensor(image_rgb(), m)
    ours = M.pixel_grad(net, x, 4, "logit", "guided-backprop").numpy()

    xt = M.to_nchw(x).requires_grad_(True)

    def relu(t):
        y = F.relu(t)
        y.register_hook(lambda g: g.clamp(min=0) * (y > 0))
        return y
    a = xt
    for w, b, pool in net.convs:
        a = relu(F.conv2d(a, w, b, padding=1))
        if pool:
            a = F.max_pool2d(a, 2)
    v = a.permute(0, 2, 3, 1).reshape(1, -1)
    for j, (w, b) in enumerate(net.denses):
        v = v @ w + b
        if j < len(net.denses) - 1:
            v = relu(v)
    (g,) = torch.autograd.grad(v[0, 4], xt)
    # the hook sees the gradient after the ReLU's own backward: the same product
    assert np.abs(g[0].permute(1, 2, 0).numpy() - ours).max() <= 1e-12 * np.abs(ours).max()
    assert (ours != 0).any()


def test_oracle_integrated_gradients_completeness():
    """Sundararajan et al.'s completeness: the attributions sum to score(x) - score(baseline),
    up to the quadrature's error, which falls as the steps grow."""
    m = gcamfile.read_gcam(SMALL)
    net = M.Net(m)
    x = M.input_tensor(image_rgb(), m)
    gap = float(net.run(x).logits[6] - net.run(M.black_tensor(m)).logits[6])
    errs = [abs(float(M.pixel_grad(net, x, 6, "logit", "integrated-gradients",
                                   steps=s).sum()) - gap) for s in (4, 128)]
    # a ReLU network's gradient jumps along the path, so the midpoint rule converges slowly
    # (measured: 58 % of the gap at 4 steps, 15 % at 128); a wrong scale or a missing
    # (x - baseline) factor is off by far more
    assert errs[1] < errs[0] and errs[1] <= 0.25 * abs(gap), (errs, gap)


def test_oracle_noise_generator():
    """The vectorised stream equals splitmix64 drawn one by one, Box-Muller's cosine branch;
    the normals are N(0, 1)."""
    state, want = 12345, []
    for _ in range(5):
        state, r1 = M.splitmix64(state)
        state, r2 = M.splitmix64(state)
        u1, u2 = ((r1 >> 11) + 1) * 2.0 ** -53, (r2 >> 11) * 2.0 ** -53
        want.append(np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2))
    assert np.array_equal(M.smoothgrad_noise(12345, 1, 5)[0], np.array(want))
    assert np.array_equal(M.smoothgrad_noise(12345, 2, 3).ravel()[:5], np.array(want))
    n = M.smoothgrad_noise(7, 4, 50001)
    assert abs(n.mean()) < 0.01 and abs(n.std() - 1) < 0.01


# ---- the library against the oracle --------------------------------------------------------------

@pytest.mark.parametrize("score", ["logit", "softmax"])
@pytest.mark.parametrize("cls", [3, 8])
def test_every_method_every_layer_reduced_vgg16(cls, score, tmp_path):
    exe = cli_or_skip("--method", "--layer", "--map-out", "--samples", "--noise", "--steps",
                      "--seed")
    m = gcamfile.read_gcam(SMALL)
    net = M.Net(m)
    x = M.input_tensor(image_rgb(), m)
    refs = M.explain_all(net, x, cls, score, gg_layers=net.names, **PIX_SMALL)
    got = cli_maps(exe, SMALL, cls, score, M.PIXEL_METHODS, net.names, tmp_path, PIX_SMALL)
    bad = compare_all(f"vgg16/16 c{cls} {score}", got, refs)
    assert not bad, "\n".join(bad)


# ---- full size -----------------------------------------------------------------------------------

def vgg16_weights():
    """tests/js/helpers.mjs randomVgg16()'s cached file (GCAM_VGG16_WEIGHTS, or
    gcam-vgg16-random-seed1-<hash of the writer scripts>.gcam in the temp folder), made with
    the same arguments when missing."""
    if os.environ.get("GCAM_VGG16_WEIGHTS"):
        return os.path.abspath(os.environ["GCAM_VGG16_WEIGHTS"])
    h = hashlib.sha256()
    for f in ("weights/make_random.py", "weights/gcamfile.py"):
        with open(os.path.join(ROOT, f), "rb") as fh:
            h.update(fh.read())
    path = os.path.join(tempfile.gettempdir(), f"gcam-vgg16-random-seed1-{h.hexdigest()[:12]}.gcam")
    if not os.path.exists(path):
        part = f"{path}.{os.getpid()}.part"
        subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "weights", "make_random.py"),
                        "--arch", "vgg16", "--seed", "1", "--labels", "--dtype", "f32", part],
                       check=True, capture_output=True)
        os.replace(part, path)
    return path


@pytest.fixture(scope="module")
def full_oracle():
    """One float64 forward of the full VGG16 (and one guided) serving every comparison."""
    import torch
    cli_or_skip("--method", "--layer", "--map-out", "--samples", "--noise", "--steps", "--seed")
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    path = vgg16_weights()
    m = gcamfile.read_gcam(path)
    net = M.Net(m)
    x = M.input_tensor(image_rgb(), m)
    return path, net, x, net.run(x), net.run(x, guided=True)


# (class, score, which pixel methods): every layer and CAM method in each; the costly
# smoothgrad / integrated-gradients (a float64 forward + backward per sample) once each.
FULL_CASES = [(17, "logit", ("saliency", "guided-backprop", "guided-gradcam", "smoothgrad")),
              (17, "softmax", ("saliency", "guided-gradcam")),
              (402, "logit", ("guided-gradcam",)),
              (402, "softmax", ("saliency", "guided-backprop", "guided-gradcam",
                                "integrated-gradients"))]


@pytest.mark.full
@pytest.mark.parametrize("cls,score,pixel", FULL_CASES)
def test_every_method_every_layer_full_vgg16(full_oracle, cls, score, pixel, tmp_path):
    exe = cli_or_skip("--method", "--layer", "--map-out", "--samples", "--noise", "--steps",
                      "--seed")
    path, net, x, fw, fwg = full_oracle
    refs = M.explain_all(net, x, cls, score, pixel_methods=pixel, gg_layers=net.names, fw=fw,
                         fw_guided=fwg, **PIX_FULL)
    got = cli_maps(exe, path, cls, score, pixel, net.names, tmp_path, PIX_FULL)
    bad = compare_all(f"vgg16 c{cls} {score}", got, refs, noisy_tolerances(
        net, x, cls, score, pixel, refs, f"vgg16 c{cls} {score}"))
    assert not bad, "\n".join(bad)


def noisy_tolerances(net, x, cls, score, pixel, refs, tag):
    """SmoothGrad's noisy copies and IG's scaled ones of the full VGG16 put some ReLU and
    max-pool decisions within float32 rounding of their threshold, so float32 arithmetic
    itself moves those maps: float32 torch on the same float32 inputs was measured 1.6 %
    (of the max) off float64 for smoothgrad (2 samples, seed 5, 34 pixels over 1e-3), where
    every single-forward method agrees within 2e-4. For these two methods the bound is three
    times float32 torch's own error (at least PIXEL_TOL): a wrong noise, scale or quadrature
    is off by far more (the reduced VGG16 holds them to PIXEL_TOL)."""
    import torch
    net32 = M.Net(net.model, torch.float32)
    tol = {}
    for m in ("smoothgrad", "integrated-gradients"):
        if m in pixel:
            g32 = M.pixel_grad(net32, x, cls, score, m, **PIX_FULL)
            err32 = M.pixel_error(M.PIXEL_REDUCE[m](g32.to(torch.float64)).numpy(),
                                  refs[(m, None)])
            report(model=tag, method=m + " float32 torch", layer=None, err=err32)
            tol[m] = max(PIXEL_TOL, 3 * err32)
    return tol


# ---- the saturated softmax -----------------------------------------------------------------------

def saturated_model(tmp_path):
    """The reduced VGG16 with its last dense layer scaled so that, for the test image, the
    top class's probability is 1 - 4e-8 in float64: 0.99999994 once rounded to float32."""
    import torch
    m = gcamfile.read_gcam(SMALL)
    net = M.Net(m)
    x = M.input_tensor(image_rgb(), m)
    with torch.no_grad():
        z = net.run(x).logits.numpy()
    top = int(np.argmax(z))

    def one_minus_p(s):
        zz = z * s
        e = np.exp(zz - zz.max())
        return float(np.delete(e, top).sum() / e.sum())
    lo, hi = 1.0, 1.0
    while one_minus_p(hi) > 4e-8:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if one_minus_p(mid) > 4e-8 else (lo, mid)
    s = hi
    denses = [(w.copy(), b.copy()) for w, b in m.denses]
    denses[-1] = ((denses[-1][0] * np.float32(s)).astype(np.float32),
                  (denses[-1][1] * np.float32(s)).astype(np.float32))
    out = tmp_path / "saturated.gcam"
    gcamfile.write_gcam(str(out), m.convs, denses, input_hw=m.input_hw,
                        preprocess=m.preprocess, mean=m.mean, std=m.std, flatten=m.flatten,
                        labels=m.labels)
    return out, top


def test_saturated_softmax_matches_float64_not_float32(tmp_path):
    import torch
    exe = cli_or_skip("--method", "--layer", "--map-out")
    path, top = saturated_model(tmp_path)
    m = gcamfile.read_gcam(str(path))
    x = M.input_tensor(image_rgb(), m)
    net64, net32 = M.Net(m), M.Net(m, torch.float32)
    fw64 = net64.run(x)
    p64 = float(fw64.probs[top])
    assert np.float32(p64) == np.float32(0.99999994), p64
    # float32 torch's softmax rounds 1 + sum(others) to 1: p_c = 1, so 1 - p_c = 0
    assert float(torch.softmax(fw64.logits.detach().to(torch.float32), 0)[top]) == 1.0
    layers = ["block5_conv3", "block4_conv3", "block2_conv2"]
    ref = M.cam_maps(net64, fw64, top, "softmax", layers, ("gradcam", "hirescam"))
    f32 = M.cam_maps(net32, net32.run(x), top, "softmax", layers, ("gradcam", "hirescam"))
    f32_err = max(M.cam_error(f32[k].norm, ref[k]) for k in ref)
    assert f32_err > 10 * CAM_TOL, f"float32 torch's cancellation is not visible ({f32_err:.3g})"
    got = run_explain(exe, path, top, "softmax", ["gradcam", "hirescam"], layers, tmp_path)
    bad = compare_all("saturated", got, ref)
    report(model="saturated", method="float32 torch", layer="*", err=f32_err)
    assert not bad, "\n".join(bad)


# ---- sanity: the model-parameter randomization check (Adebayo et al. 2018) -----------------------

TRAINED = os.path.join(ROOT, "weights", "small", "fashion_vgg.gcam")


def test_randomization_gradcam_falls_once_the_head_is_randomized(capsys):
    """On the trained small model's held-out images (the first 24, those it classifies
    correctly) the CLI's cascade (dense layers from the last, then convs top-down) drops
    Grad-CAM's mean Spearman correlation below 0.5 once every dense layer is re-initialised;
    guided backprop's is printed (the paper found it insensitive: it may stay high)."""
    import sys
    exe = cli_or_skip("--method", "--metric")
    sys.path.insert(0, os.path.join(ROOT, "data"))
    import cluttered_fashion as cf
    m = gcamfile.read_gcam(TRAINED)
    n_dense, n_conv = len(m.denses), len(m.convs)
    rows = cf.read_heldout(os.path.join(ROOT, "tests", "fixtures", "heldout"))[:24]
    after_head = {"gradcam": [], "guided-backprop": []}
    for path, label, _ in rows:
        r = subprocess.run([exe, "explain", "--weights", TRAINED, "--image", path, "--class",
                            str(label), "--method", "gradcam,guided-backprop", "--metric",
                            "randomization", "--json"], capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        if max(out["predictions"], key=lambda p: p["logit"])["index"] != label:
            continue               # the explained class should be the one the model sees
        for e in out["explanations"]:
            curve = e["metric"]["curve"]
            assert len(curve) == n_dense + n_conv, curve
            assert all(-1.0 <= v <= 1.0 for v in curve), curve
            after_head[e["method"]].append(curve[n_dense - 1])
    with capsys.disabled():
        for meth, v in after_head.items():
            print(f"\n  randomization, {meth}: Spearman after the head ({n_dense} dense layers) "
                  f"on {len(v)} correctly classified images: mean {np.mean(v):.3f}, median "
                  f"{np.median(v):.3f}, min {min(v):.3f}, max {max(v):.3f}, below 0.5 on "
                  f"{sum(x < 0.5 for x in v)}")
    report(model="fashion_vgg", method="randomization",
           layer="head", err={k: float(np.median(v)) for k, v in after_head.items()})
    # on average, as the issue says (not on every image: the trained conv features keep the
    # object's place until a conv is redrawn; docs/methods.md has the cascades)
    assert len(after_head["gradcam"]) >= 15
    assert np.mean(after_head["gradcam"]) < 0.5, after_head["gradcam"]
