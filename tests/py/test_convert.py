"""weights/convert.py on source files written by the real libraries (h5py in Keras's
layouts, torch.save of torchvision modules), checked against the original frameworks.

Each conversion is checked twice: through gcamfile.read_gcam + the torch oracle (the
converter alone) and through the C library's CLI, `build/gcam explain --json` (issue 3's
acceptance test; fails with a clear message if the CLI is not built). The full-size VGG16
files (~553 MB each) live in a tmp dir and are removed after their module-scoped fixture.
"""

import json
import os
import pickle
import shutil

import cv2
import h5py
import numpy as np
import pytest
import torch

from conftest import compare, python_candidate, run_cli_json
import convert
import gcamfile
import sources

MODES = ("logit", "softmax")


def run_convert(capsys, *args):
    """convert.main(args) -> (exit code, stdout, stderr)."""
    capsys.readouterr()
    rc = convert.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def convert_ok(capsys, src, out, *args):
    """Convert, insist on success, and read the result back: (GcamModel, stdout)."""
    rc, so, se = run_convert(capsys, src, out, *args)
    assert rc == 0, se
    return gcamfile.read_gcam(out), so


def write_png(path, img):
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


def labels_file(tmp_path, n, keras_dict=False):
    p = tmp_path / "labels.json"
    names = [f"thing {i}" for i in range(n)]
    data = {str(i): [f"n{i:08d}", s] for i, s in enumerate(names)} if keras_dict else names
    p.write_text(json.dumps(data))
    return p, names


def check_both_ways(gcam, img, img_path, ref, n_classes, modes=MODES, cli=True):
    """Compare the converted file (python path, and CLI if cli) with the framework's
    sources.Reference. Returns the figures."""
    figures = {}
    top = [int(c) for c in np.argsort(-ref.logits, kind="stable")]
    classes = sorted(set(top[:3] + [top[-1]]))
    for mode in modes:
        ref_logits, ref_cams, _ = ref.cams(classes, mode)
        cand = python_candidate(gcam, img, classes, mode)
        problems, fig = compare(cand, ref_logits, ref_cams)
        assert not problems, f"converted file vs framework ({mode}): {problems}"
        figures[f"py_{mode}"] = fig
    if cli:
        for mode in modes:
            res = run_cli_json(gcam, img_path, top_k=min(5, n_classes), score=mode)
            ref_logits, ref_cams, _ = ref.cams(list(res["cams"]), mode)
            problems, fig = compare(res, ref_logits, ref_cams, k=min(5, n_classes))
            assert not problems, f"build/gcam vs framework ({mode}): {problems}"
            figures[f"cli_{mode}"] = fig
    return figures


# ---- small sources ------------------------------------------------------------------------------

KERAS_WRITERS = {
    "legacy": sources.write_keras_legacy,
    "keras2": sources.write_keras2,
    "keras3": sources.write_keras3,
    "tf213": lambda p, l: sources.write_keras3(p, l, top="_layer_checkpoint_dependencies"),
}


@pytest.mark.parametrize("layout", sorted(KERAS_WRITERS))
def test_keras_small(layout, tmp_path, capsys, image_file):
    img_path, img = image_file
    layers = sources.keras_vgg_arrays(seed=11, width_div=16, dense=(64, 64), classes=10)
    src = tmp_path / "src.h5"
    KERAS_WRITERS[layout](src, layers)
    lab, names = labels_file(tmp_path, 10, keras_dict=(layout == "keras2"))
    out = tmp_path / "m.gcam"
    m, so = convert_ok(capsys, src, out, "--labels", lab)
    assert m.labels == names and m.preprocess == "caffe" and m.flatten == "hwc"
    assert [p for _, _, p in m.convs] == [False, True, False, True, False, False, True,
                                          False, False, True, False, False, True]
    assert m.sha256 in so
    x = sources.keras_input(img)
    figs = check_both_ways(out, img, img_path,
                           sources.keras_reference(layers, x), 10)
    print(layout, figs)


def test_keras_layouts_give_identical_files(tmp_path, capsys):
    layers = sources.keras_vgg_arrays(seed=13, width_div=32, dense=(16, 16), classes=3)
    outs = []
    for layout, writer in sorted(KERAS_WRITERS.items()):
        src, out = tmp_path / f"{layout}.h5", tmp_path / f"{layout}.gcam"
        writer(src, layers)
        assert run_convert(capsys, src, out)[0] == 0
        outs.append(out.read_bytes())
    assert all(o == outs[0] for o in outs)


TORCH_CASES = [("vgg16", False), ("vgg11", True), ("vgg13", False), ("vgg19", True)]


@pytest.mark.parametrize("arch,bn", TORCH_CASES, ids=[a + ("_bn" if b else "")
                                                       for a, b in TORCH_CASES])
def test_torch_small(arch, bn, tmp_path, capsys, image_file):
    img_path, img = image_file
    model = sources.torchvision_vgg(arch, bn, seed=5, width_div=16, hidden=64, classes=10)
    src = tmp_path / "src.pth"
    sources.save_state_dict(model, src)
    out = tmp_path / "m.gcam"
    m, so = convert_ok(capsys, src, out)
    assert m.preprocess == "torch" and m.flatten == "hwc" and m.labels is None
    assert sum(p for _, _, p in m.convs) == 5
    x = sources.torch_input(img)
    figs = check_both_ways(out, img, img_path,
                           sources.torch_reference(model, x), 10)
    print(arch, bn, figs)


def test_torch_legacy_container_and_wrapped_state_dict(tmp_path, capsys, image_file):
    """torch.save's pre-1.6 pickle container, and a checkpoint {'state_dict': ...} whose
    keys carry DataParallel's 'module.' prefix, convert to the same file as the plain one."""
    model = sources.torchvision_vgg("vgg11", True, seed=9, width_div=32, hidden=16, classes=4)
    plain, legacy, wrapped = tmp_path / "a.pth", tmp_path / "b.pth", tmp_path / "c.pth"
    torch.save(model.state_dict(), plain)
    torch.save(model.state_dict(), legacy, _use_new_zipfile_serialization=False)
    assert legacy.read_bytes()[:2] == b"\x80\x02" and plain.read_bytes()[:2] == b"PK"
    torch.save({"state_dict": {"module." + k: v for k, v in model.state_dict().items()}},
               wrapped)
    outs = []
    for src in (plain, legacy, wrapped):
        rc, so, se = run_convert(capsys, src, tmp_path / "o.gcam")
        assert rc == 0, se
        assert "file sha256" in so
        outs.append((tmp_path / "o.gcam").read_bytes())
    assert outs[0] == outs[1] == outs[2]


def test_torch_narrow_112_with_labels(tmp_path, capsys, image_file):
    """What the small-model helper does: a narrow VGG for 10 classes at 112x112."""
    img_path, img = image_file
    model = sources.torchvision_vgg("vgg16", False, seed=8, width_div=16, hidden=64,
                                    classes=10, input_size=112)
    src = tmp_path / "small.pth"
    sources.save_state_dict(model, src)
    lab, names = labels_file(tmp_path, 10)
    out = tmp_path / "small.gcam"
    rc, so, se = run_convert(capsys, src, out, "--labels", lab)       # forgot --input-size
    assert rc == 2 and se.count("\n") == 1
    assert "288 inputs" in se and "32 x 7 x 7 = 1568" in se and "--input-size" in se
    m, so = convert_ok(capsys, src, out, "--labels", lab, "--input-size", "112")
    assert m.input_hw == (112, 112) and m.labels == names and m.cam_hwc == (7, 7, 32)
    x = sources.torch_input(img, 112)
    res = check_both_ways(out, img, img_path,
                          sources.torch_reference(model, x), 10)
    print(res)


def test_default_imagenet_labels(tmp_path, capsys):
    layers = sources.keras_vgg_arrays(seed=2, width_div=32, dense=(16,), classes=1000)
    src = tmp_path / "w.h5"
    sources.write_keras_legacy(src, layers)
    out = tmp_path / "m.gcam"
    m, so = convert_ok(capsys, src, out)
    assert len(m.labels) == 1000 and m.labels[281] == "tabby" and m.labels[0] == "tench"


def test_broken_fc1_permutation_is_caught(tmp_path, capsys, image_file, monkeypatch):
    """A converter that forgets to permute fc1's rows from torch's CHW flatten still runs,
    and gives garbage: the comparison must say so (python path and CLI)."""
    img_path, img = image_file
    model = sources.torchvision_vgg("vgg16", False, seed=6, width_div=16, hidden=64, classes=10)
    src = tmp_path / "src.pth"
    sources.save_state_dict(model, src)
    x = sources.torch_input(img)
    classes = list(range(10))
    ref = sources.torch_reference(model, x)
    ref_logits, ref_cams, _ = ref.cams(classes)

    good = tmp_path / "good.gcam"
    assert run_convert(capsys, src, good)[0] == 0
    problems, _ = compare(python_candidate(good, img, classes), ref_logits, ref_cams)
    assert not problems

    monkeypatch.setattr(convert, "torch_fc1_rows_to_hwc", lambda w, hf, wf, c: w)
    bad = tmp_path / "bad.gcam"
    assert run_convert(capsys, src, bad)[0] == 0
    problems, fig = compare(python_candidate(bad, img, classes), ref_logits, ref_cams)
    print("broken permutation, python path:", problems)
    assert problems and fig["logit_rel"] > 1e-2
    res = run_cli_json(bad, img_path, top_k=5)
    r_logits, r_cams, _ = ref.cams(list(res["cams"]))
    problems, fig = compare(res, r_logits, r_cams)
    print("broken permutation, CLI:", problems)
    assert problems and fig["logit_rel"] > 1e-2


def test_f16_error_small(tmp_path, capsys, image_file):
    img_path, img = image_file
    layers = sources.keras_vgg_arrays(seed=12, width_div=16, dense=(64, 64), classes=10)
    src = tmp_path / "src.h5"
    sources.write_keras2(src, layers)
    f32, f16 = tmp_path / "m32.gcam", tmp_path / "m16.gcam"
    assert run_convert(capsys, src, f32)[0] == 0
    assert run_convert(capsys, src, f16, "--dtype", "f16")[0] == 0
    assert gcamfile.read_gcam(f16).dtype == "f16"
    a = run_cli_json(f32, img_path, top_k=5)
    b = run_cli_json(f16, img_path, top_k=5)
    scale = max(abs(v) for v in a["logits"].values())
    lerr = max(abs(a["logits"][c] - b["logits"][c]) for c in a["logits"] if c in b["logits"])
    cerr = max(float(np.max(np.abs(a["cams"][c] - b["cams"][c]))) for c in a["cams"]
               if c in b["cams"])
    print(f"f16 vs f32 (small VGG16, CLI): max logit error {lerr:.3g} "
          f"({lerr / scale:.3g} relative), max heatmap error {cerr:.3g}")
    assert lerr / scale < 0.02 and cerr < 0.05


def test_int8_error_small(tmp_path, capsys, image_file):
    """--dtype int8 (dense int8 per output feature, convs f16): prints its fidelity; the same
    top-1 as f32 and small logit and heatmap errors, through the C CLI"""
    img_path, img = image_file
    layers = sources.keras_vgg_arrays(seed=12, width_div=16, dense=(64, 64), classes=10)
    src = tmp_path / "src.h5"
    sources.write_keras2(src, layers)
    f32, i8 = tmp_path / "m32.gcam", tmp_path / "m8.gcam"
    assert run_convert(capsys, src, f32)[0] == 0
    rc, so, se = run_convert(capsys, src, i8, "--dtype", "int8")
    assert rc == 0, se
    assert "fidelity (int8)" in so and "dense0" in so
    assert gcamfile.read_gcam(i8).dtype == "int8"
    assert os.path.getsize(i8) < 0.4 * os.path.getsize(f32)
    a = run_cli_json(f32, img_path, top_k=5)
    b = run_cli_json(i8, img_path, top_k=5)
    scale = max(abs(v) for v in a["logits"].values())
    lerr = max(abs(a["logits"][c] - b["logits"][c]) for c in a["logits"] if c in b["logits"])
    cerr = max(float(np.max(np.abs(a["cams"][c] - b["cams"][c]))) for c in a["cams"]
               if c in b["cams"])
    print(f"int8 vs f32 (small VGG16, CLI): max logit error {lerr:.3g} "
          f"({lerr / scale:.3g} relative), max heatmap error {cerr:.3g}")
    assert lerr / scale < 0.05 and cerr < 0.1


# ---- refusals -------------------------------------------------------------------------------

def refused(capsys, src, out, *extra, match):
    rc, so, se = run_convert(capsys, src, out, *extra)
    assert rc == 2, (rc, so, se)
    assert se.count("\n") == 1 and se.startswith("convert.py: error: "), se
    assert match in se, se
    assert not os.path.exists(out) or os.path.getsize(out) == 0
    return se


def test_refusals(tmp_path, capsys):
    out = tmp_path / "out.gcam"
    layers = sources.keras_vgg_arrays(seed=1, width_div=32, dense=(16,), classes=4)

    def keras_with(mutate, name, writer=sources.write_keras_legacy):
        ls = [(n, k, [a.copy() for a in arr]) for n, k, arr in layers]
        mutate(ls)
        p = tmp_path / name
        writer(p, ls)
        return p

    def set_nan(ls):
        ls[4][2][0][0, 0, 0, 0] = np.nan
    refused(capsys, keras_with(set_nan, "nan.h5"), out, match="NaN or Inf")

    def set_inf(ls):
        ls[-1][2][1][2] = np.inf
    refused(capsys, keras_with(set_inf, "inf.h5", sources.write_keras3), out, match="NaN or Inf")

    def int_kernel(ls):
        ls[1][2][0] = ls[1][2][0].astype(np.int32)
    refused(capsys, keras_with(int_kernel, "int.h5"), out, match="dtype int32")

    def five_by_five(ls):
        w = ls[1][2][0]
        ls[1][2][0] = np.zeros((5, 5) + w.shape[2:], np.float32)
    refused(capsys, keras_with(five_by_five, "k5.h5"), out, match="not a VGG")

    def no_top(ls):
        del ls[-3:]          # flatten, fc1, predictions
    refused(capsys, keras_with(no_top, "notop.h5"), out, match="include_top=False")

    # an HDF5 external link (and a soft link) anywhere in the file
    ext = tmp_path / "ext.h5"
    sources.write_keras2(ext, layers)
    with h5py.File(ext, "a") as f:
        f["fc1"]["sneaky"] = h5py.ExternalLink("/etc/passwd", "/x")
    refused(capsys, ext, out, match="external link")
    soft = tmp_path / "soft.h5"
    sources.write_keras2(soft, layers)
    with h5py.File(soft, "a") as f:
        f["alias"] = h5py.SoftLink("/fc1")
    refused(capsys, soft, out, match="soft link")

    # HDF5 that is not Keras
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["data"] = np.zeros(3)
    refused(capsys, other, out, match="without Keras weights")

    # a whole Keras 3 model archive (.keras is a zip, like torch's files)
    import zipfile
    ka = tmp_path / "model.keras"
    with zipfile.ZipFile(ka, "w") as z:
        z.writestr("config.json", "{}")
        z.writestr("model.weights.h5", good_bytes(tmp_path, layers))
    refused(capsys, ka, out, match="extract its model.weights.h5")

    # not a weights file at all
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"GIF89a" + bytes(100))
    refused(capsys, junk, out, match="neither HDF5")

    # torch: another architecture, a pickle that would run code, NaN, wrong gap
    import torchvision
    rn = tmp_path / "resnet.pth"
    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), rn)
    refused(capsys, rn, out, match="not a torchvision VGG state dict")
    os.remove(rn)

    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        pickle.dump(_Evil(), f, protocol=2)
    se = refused(capsys, evil, out, match="weights_only")
    assert not os.path.exists(tmp_path / "pwned")

    model = sources.torchvision_vgg("vgg11", False, seed=1, width_div=32, hidden=16, classes=4)
    sd = model.state_dict()
    sd["features.3.weight"][0, 0, 0, 0] = float("nan")
    nanp = tmp_path / "nan.pth"
    torch.save(sd, nanp)
    refused(capsys, nanp, out, match="NaN or Inf")

    sd = sources.torchvision_vgg("vgg11", False, seed=1, width_div=32, hidden=16,
                                 classes=4).state_dict()
    sd = {k.replace("features.3.", "features.4."): v for k, v in sd.items()}   # gap 4 -> 5?
    gap = tmp_path / "gap.pth"
    torch.save(sd, gap)
    refused(capsys, gap, out, match="gap")

    sd = sources.torchvision_vgg("vgg11", False, seed=1, width_div=32, hidden=16,
                                 classes=4).state_dict()
    sd["features.0.weight"] = sd["features.0.weight"].to(torch.int64)
    intp = tmp_path / "int.pth"
    torch.save(sd, intp)
    refused(capsys, intp, out, match="dtype torch.int64")

    # labels that do not fit
    good = tmp_path / "good.h5"
    sources.write_keras_legacy(good, layers)
    lab, _ = labels_file(tmp_path, 5)
    refused(capsys, good, out, "--labels", lab, match="5 names, the network has 4 classes")
    badlab = tmp_path / "bad.json"
    badlab.write_text('{"a": 1}')
    refused(capsys, good, out, "--labels", badlab, match="--labels")


def good_bytes(tmp_path, layers):
    p = tmp_path / "k3.weights.h5"
    sources.write_keras3(p, layers)
    return p.read_bytes()


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


# ---- full-size VGG16 (553 MB per file, in a tmp dir, removed afterwards) -------------------------

@pytest.fixture(scope="module")
def full_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("full_vgg16")
    img = sources.sample_image(203, 157, seed=1)
    write_png(d / "img.png", img)
    yield d, img
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def full_keras(full_dir):
    return sources.keras_vgg_arrays(seed=21)


FULL_LAYOUTS = ["legacy", "keras2", "keras3", "torch"]


@pytest.fixture(scope="module")
def full_converted(full_dir, full_keras):
    """Convert each full-size layout once (source removed right after conversion)."""
    d, _ = full_dir
    out, figures = {}, {}
    torch_model = sources.torchvision_vgg("vgg16", False, seed=22)
    for layout in FULL_LAYOUTS:
        src = d / f"src_{layout}"
        if layout == "torch":
            sources.save_state_dict(torch_model, src)
        else:
            KERAS_WRITERS[layout](src, full_keras)
        out[layout] = d / f"{layout}.gcam"
        size = os.path.getsize(src)
        sha, net, labels = convert.convert(str(src), str(out[layout]))
        figures[layout] = (size, os.path.getsize(out[layout]), sha)
        os.remove(src)
    f16 = d / "keras2_f16.gcam"
    src = d / "src_f16"
    sources.write_keras2(src, full_keras)
    convert.convert(str(src), str(f16), dtype="f16")
    os.remove(src)
    out["keras2_f16"] = f16
    for k, v in figures.items():
        print(f"full VGG16 {k}: source {v[0]} bytes -> {v[1]} bytes, sha256 {v[2]}")
    out["sha"] = {k: v[2] for k, v in figures.items()}
    return out, torch_model


_FULL_REFS = {}


def _full_ref(layout, full_keras, torch_model, img):
    """One float64 forward per framework, shared by the tests of this module."""
    key = "torch" if layout == "torch" else "keras"
    if key not in _FULL_REFS:
        if key == "torch":
            _FULL_REFS[key] = sources.torch_reference(torch_model, sources.torch_input(img))
        else:
            _FULL_REFS[key] = sources.keras_reference(full_keras, sources.keras_input(img))
    return _FULL_REFS[key]


@pytest.mark.full
@pytest.mark.parametrize("layout", FULL_LAYOUTS)
def test_full_vgg16_converter(layout, full_dir, full_keras, full_converted):
    d, img = full_dir
    files, torch_model = full_converted
    m = gcamfile.read_gcam(files[layout])
    if layout != "torch":           # the three Keras layouts hold the same network
        assert files["sha"][layout] == files["sha"]["legacy"]
    assert len(m.labels) == 1000 and m.labels[281] == "tabby"
    n_params = sum(w.size + b.size for w, b, _ in m.convs) + sum(
        w.size + b.size for w, b in m.denses)
    assert n_params == 138_357_544
    assert 4 * n_params <= m.payload_bytes < 4 * n_params + 64 * 32
    assert m.file_bytes - m.payload_bytes < 64 * 1024     # header + labels
    figs = check_both_ways(files[layout], img, d / "img.png",
                           _full_ref(layout, full_keras, torch_model, img), 1000,
                           modes=("logit",), cli=False)
    print(layout, figs)


@pytest.mark.full
@pytest.mark.parametrize("layout", FULL_LAYOUTS)
def test_full_vgg16_cli(layout, full_dir, full_keras, full_converted):
    d, img = full_dir
    files, torch_model = full_converted
    ref = _full_ref(layout, full_keras, torch_model, img)
    figures = {}
    for mode in MODES:
        res = run_cli_json(files[layout], d / "img.png", top_k=5, score=mode)
        ref_logits, ref_cams, _ = ref.cams(list(res["cams"]), mode)
        problems, fig = compare(res, ref_logits, ref_cams)
        assert not problems, f"{layout} {mode}: {problems}"
        top0 = res["top"][0]
        assert res["labels"][top0] == sources_labels()[top0]
        figures[mode] = fig
    print(f"full VGG16 {layout}: build/gcam vs framework {figures}")


def sources_labels():
    return convert.imagenet_labels()


@pytest.mark.full
def test_full_vgg16_f16_error(full_dir, full_converted):
    d, img = full_dir
    files, _ = full_converted
    s32, s16 = os.path.getsize(files["keras2"]), os.path.getsize(files["keras2_f16"])
    a = run_cli_json(files["keras2"], d / "img.png", top_k=5)
    b = run_cli_json(files["keras2_f16"], d / "img.png", top_k=5)
    scale = max(abs(v) for v in a["logits"].values())
    common = [c for c in a["logits"] if c in b["logits"]]
    lerr = max(abs(a["logits"][c] - b["logits"][c]) for c in common)
    cerr = max(float(np.max(np.abs(a["cams"][c] - b["cams"][c]))) for c in a["cams"]
               if c in b["cams"])
    print(f"full VGG16 f16 vs f32 (CLI): files {s32} -> {s16} bytes; top-5 "
          f"{a['top']} vs {b['top']}; max logit error {lerr:.3g} ({lerr / scale:.3g} "
          f"relative to max |logit| {scale:.3g}); max heatmap error {cerr:.3g}")
    assert s16 < 0.51 * s32
    assert lerr / scale < 0.02 and cerr < 0.05
