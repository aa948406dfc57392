"""The command-line tool: its JSON, its images, and one clear stderr line for every bad input.

Run: /usr/bin/python3 -m pytest tests/py/test_cli.py   (after building build/gcam)
"""

import json
import os
import struct
import subprocess
import zlib

import numpy as np
import pytest

from conftest import ROOT, cli_path

FIX = os.path.join(ROOT, "tests", "fixtures", "vgg_small")
MODEL = os.path.join(FIX, "model.gcam")
IMAGE = os.path.join(FIX, "img0.png")  # 203 x 157


def run(*args):
    exe = cli_path()
    if not os.access(exe, os.X_OK):
        pytest.fail(f"{exe} not found: build the CLI first")
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=120)


def assert_one_line_error(r, *words):
    assert r.returncode != 0, f"exit 0 for a bad input: {r.stdout}"
    lines = r.stderr.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("gcam: "), f"stderr: {r.stderr!r}"
    for w in words:
        assert w.lower() in lines[0].lower(), f"'{w}' not in {lines[0]!r}"
    assert r.stdout == "", f"stdout on error: {r.stdout!r}"


def png_bytes(w, h, rgb):
    """a valid PNG written by hand (no cv2), 8-bit RGB"""
    raw = b"".join(b"\x00" + bytes(rgb[y].astype(np.uint8).tobytes()) for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_json_shape_and_top_k():
    r = run("explain", "--weights", MODEL, "--image", IMAGE, "--json", "--top-k", "3")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    preds, ex = out["predictions"], out["explanations"]
    assert len(preds) == 5 and len(ex) == 3
    logits = [p["logit"] for p in preds]
    assert logits == sorted(logits, reverse=True)
    # the probabilities are the softmax of all the logits (a run that prints all 10), sorted
    everything = json.loads(run("explain", "--weights", MODEL, "--image", IMAGE, "--json",
                                "--top-k", "10").stdout)["predictions"]
    assert sorted(p["index"] for p in everything) == list(range(10))
    z = np.array([p["logit"] for p in everything], np.float64)
    soft = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    by_index = dict(zip((p["index"] for p in everything), soft))
    probs = [p["probability"] for p in preds]
    assert probs == sorted(probs, reverse=True)
    for p in preds:
        assert abs(p["probability"] - by_index[p["index"]]) <= 1e-6, (p, by_index[p["index"]])
    assert abs(sum(p["probability"] for p in everything) - 1.0) <= 1e-6
    assert [e["class"] for e in ex] == [p["index"] for p in preds[:3]]
    for e in ex:
        hm = e["heatmap"]
        assert (hm["width"], hm["height"]) == (14, 14) and len(hm["data"]) == 196
        assert min(hm["data"]) >= 0.0 and max(hm["data"]) in (0.0, 1.0)
        assert e["raw_max"] >= 0.0
    assert preds[0]["label"] == f"class{preds[0]['index']}"


def test_class_and_score_modes_differ_but_agree_on_shape():
    a = json.loads(run("explain", "--weights", MODEL, "--image", IMAGE, "--json", "--class", "7").stdout)
    b = json.loads(run("explain", "--weights", MODEL, "--image", IMAGE, "--json", "--class", "7",
                       "--score", "softmax").stdout)
    assert a["explanations"][0]["class"] == 7 and b["explanations"][0]["class"] == 7
    assert a["explanations"][0]["raw_max"] != b["explanations"][0]["raw_max"]


def test_overlay_and_heatmap_pngs(tmp_path):
    import cv2
    ov, hm = tmp_path / "ov.png", tmp_path / "hm.png"
    r = run("explain", "--weights", MODEL, "--image", IMAGE, "--overlay", ov, "--heatmap", hm)
    assert r.returncode == 0, r.stderr
    for p in (ov, hm):
        img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        assert img is not None and img.shape[:2] == (157, 203), p
    src = cv2.imread(IMAGE)
    over = cv2.imread(str(ov))
    assert np.abs(over.astype(int) - src.astype(int)).max() > 0  # something was blended


def test_text_output_names_classes():
    r = run("explain", "--weights", MODEL, "--image", IMAGE)
    assert r.returncode == 0 and r.stdout.startswith("1. class ")
    assert len(r.stdout.strip().split("\n")) == 5


def test_info():
    r = run("info", "--weights", MODEL)
    assert r.returncode == 0 and "13 conv + 3 dense" in r.stdout and "sha256" in r.stdout


@pytest.mark.parametrize("args,words", [
    ((), ["command"]),
    (("frobnicate",), ["unknown command"]),
    (("explain", "--weights", MODEL), ["--image"]),
    (("explain", "--weights", MODEL, "--image", IMAGE, "--class"), ["needs a value"]),
    (("explain", "--weights", MODEL, "--image", IMAGE, "--class", "x"), ["--class"]),
    (("explain", "--weights", MODEL, "--image", IMAGE, "--class", "-3"), ["--class"]),
    (("explain", "--weights", MODEL, "--image", IMAGE, "--class", "10"), ["outside"]),
    (("explain", "--weights", MODEL, "--image", IMAGE, "--top-k", "11"), ["top-k"]),
    (("explain", "--weights", MODEL, "--image", IMAGE, "--top-k", "0"), ["top-k"]),
    (("explain", "--weights", MODEL, "--image", IMAGE, "--class", "1", "--top-k", "2"), ["exclude"]),
    (("explain", "--weights", MODEL, "--image", IMAGE, "--score", "prob"), ["--score"]),
    (("explain", "--weights", MODEL, "--image", IMAGE, "--bogus", "1"), ["unknown option --bogus"]),
    # issue 9, finding 5: an unknown option last said "--bogus needs a value"
    (("explain", "--weights", MODEL, "--image", IMAGE, "--bogus"), ["unknown option --bogus"]),
    (("explain", "--bogus", "--weights", MODEL, "--image", IMAGE), ["unknown option --bogus"]),
    (("explain", "--weights", MODEL, "--image", "/no/such.png"), ["/no/such.png"]),
    (("explain", "--weights", "/no/such.gcam", "--image", IMAGE), ["/no/such.gcam"]),
])
def test_usage_and_missing_files(args, words):
    assert_one_line_error(run(*args), *words)


def bad_weights(tmp_path):
    good = open(MODEL, "rb").read()
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 1
    v2 = bytearray(good)
    v2[8:12] = struct.pack("<I", 2)
    return {
        "empty": (b"", "empty"),
        "truncated": (good[: len(good) // 3], "TRUNCATED"),
        "one bit flipped": (bytes(flipped), "SHA-256"),
        "version 2": (bytes(v2), "version 2"),
        "an image": (open(IMAGE, "rb").read(), "not a gcam weights file"),
    }


@pytest.mark.parametrize("case", ["empty", "truncated", "one bit flipped", "version 2", "an image"])
def test_bad_weights(tmp_path, case):
    data, word = bad_weights(tmp_path)[case]
    p = tmp_path / "w.gcam"
    p.write_bytes(data)
    assert_one_line_error(run("explain", "--weights", p, "--image", IMAGE), word)


def bad_images():
    png = open(IMAGE, "rb").read()
    return {
        "empty": b"",
        "truncated png": png[: len(png) // 2],
        "text": b"this is not an image at all\n" * 10,
        "gif": b"GIF89a" + struct.pack("<HH", 1, 1) + b"\x00" * 20,
        "psd": b"8BPS\x00\x01" + b"\x00" * 40,
    }


@pytest.mark.parametrize("case,status", [
    ("empty", "IMAGE_DECODE"), ("truncated png", "IMAGE_DECODE"), ("text", "IMAGE_DECODE"),
    ("gif", "UNSUPPORTED_FORMAT"), ("psd", "UNSUPPORTED_FORMAT")])
def test_bad_images(tmp_path, case, status):
    p = tmp_path / "img"
    p.write_bytes(bad_images()[case])
    assert_one_line_error(run("explain", "--weights", MODEL, "--image", p), status)


@pytest.mark.parametrize("w,h", [(1, 1), (1, 5000), (5000, 1)])
def test_degenerate_sizes_explain(tmp_path, w, h):
    rng = np.random.default_rng(w * 7 + h)
    p = tmp_path / "img.png"
    p.write_bytes(png_bytes(w, h, rng.integers(0, 256, (h, w, 3))))
    ov = tmp_path / "ov.png"
    r = run("explain", "--weights", MODEL, "--image", p, "--json", "--overlay", ov)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert all(np.isfinite(v) for v in out["explanations"][0]["heatmap"]["data"])
    import cv2
    assert cv2.imread(str(ov)).shape[:2] == (h, w)


def test_image_over_the_cap_is_refused_before_decoding(tmp_path):
    # a PNG header announcing 100000 x 100000 pixels, with no pixel data at all
    hdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + hdr
            + struct.pack(">I", zlib.crc32(b"IHDR" + hdr) & 0xFFFFFFFF))
    p = tmp_path / "huge.png"
    p.write_bytes(data)
    assert_one_line_error(run("explain", "--weights", MODEL, "--image", p), "IMAGE_TOO_LARGE")


# ---- issue 9, finding 5: write errors, files that are not files, raw bytes in messages ------

def run_bytes(*args, timeout=20, stdout=subprocess.PIPE):
    exe = cli_path()
    if not os.access(exe, os.X_OK):
        pytest.fail(f"{exe} not found: build the CLI first")
    return subprocess.run([exe, *map(str, args)], stdout=stdout, stderr=subprocess.PIPE,
                          timeout=timeout)


def assert_one_clean_line(r, *words):
    """non-zero exit, one stderr line, printable ASCII only (stdout may hold the results
    printed before a failed write)"""
    assert r.returncode != 0, "exit 0"
    err = r.stderr
    assert all(0x20 <= b < 0x7f for b in err.rstrip(b"\n")), f"raw bytes in {err!r}"
    lines = err.decode("ascii").strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("gcam: "), f"stderr: {err!r}"
    for w in words:
        assert w.lower() in lines[0].lower(), f"'{w}' not in {lines[0]!r}"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
@pytest.mark.parametrize("flag", ["--overlay", "--heatmap"])
def test_finding5_image_write_to_full_disk_fails(flag):
    r = run_bytes("explain", "--weights", MODEL, "--image", IMAGE, flag, "/dev/full")
    assert_one_clean_line(r, "cannot write /dev/full", "no space")
    assert b"written" not in r.stdout


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_finding5_stdout_to_full_disk_fails():
    with open("/dev/full", "wb") as full:
        r = run_bytes("explain", "--weights", MODEL, "--image", IMAGE, "--json", stdout=full)
    assert_one_clean_line(r, "cannot write the output")


@pytest.mark.parametrize("which", ["--image", "--weights"])
def test_finding5_dev_zero_is_refused_before_reading(which):
    args = {"--image": IMAGE, "--weights": MODEL}
    args[which] = "/dev/zero"
    # reading 1 GiB of zeros took seconds and 1 GiB of memory; refusing takes milliseconds
    r = run_bytes("explain", "--weights", args["--weights"], "--image", args["--image"],
                  timeout=10)
    assert_one_clean_line(r, "/dev/zero", "not a regular file")


@pytest.mark.parametrize("which", ["--image", "--weights"])
def test_finding5_fifo_without_writer_does_not_hang(tmp_path, which):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    args = {"--image": IMAGE, "--weights": MODEL}
    args[which] = fifo
    # open() of a FIFO with no writer blocked forever; subprocess's timeout fails the test
    r = run_bytes("explain", "--weights", args["--weights"], "--image", args["--image"],
                  timeout=10)
    assert_one_clean_line(r, "not a regular file")


def test_finding5_png_chunk_name_bytes_never_reach_the_message():
    # a critical chunk named C3 28 A0 A1 (invalid UTF-8): stb put the raw bytes in its reason
    bad = os.path.join(ROOT, "tests", "fixtures", "hostile", "finding5_png_chunk_not_utf8.png")
    r = run_bytes("explain", "--weights", MODEL, "--image", bad)
    assert_one_clean_line(r, "0xC328A0A1", "IMAGE_DECODE")


def test_finding5_raw_bytes_in_an_option_are_not_echoed():
    r = subprocess.run([cli_path(), "explain", b"--bogus\xff\x1b[31m", "--image", IMAGE],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    assert_one_clean_line(r, "unknown option --bogus")


@pytest.mark.parametrize("name", ["finding3_dht_over_256.jpg",
                                  "finding3_progressive_undefined_huffman.jpg",
                                  "finding3_png_idat_claims_gb.png"])
def test_finding3_hostile_images_get_one_line(name):
    bad = os.path.join(ROOT, "tests", "fixtures", "hostile", name)
    r = run_bytes("explain", "--weights", MODEL, "--image", bad, timeout=20)
    assert_one_clean_line(r, "IMAGE_DECODE")


# ---- issue 11: --method, --layer, --map-out, --metric ---------------------------------------

CAM_METHODS = ["gradcam", "hirescam", "gradcam-elementwise", "gradcam++", "xgradcam", "layercam",
               "eigencam", "eigengradcam"]
PIXEL_METHODS = ["saliency", "guided-backprop", "guided-gradcam", "smoothgrad",
                 "integrated-gradients"]
# the fixture's layers: VGG16's topology, 224 x 224 input
LAYER_SIDE = {"block1_conv1": 224, "block2_conv1": 112, "block3_conv3": 56, "block4_conv3": 28,
              "block5_conv3": 14}


def explain_json(*args):
    r = run("explain", "--weights", MODEL, "--image", IMAGE, "--json", "--class", "3", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["explanations"]


def test_default_is_gradcam_at_the_last_conv_and_names_it():
    plain = explain_json()
    named = explain_json("--method", "gradcam", "--layer", "block5_conv3")
    by_index = explain_json("--layer", "12")
    assert plain == named == by_index
    e = plain[0]
    assert (e["method"], e["layer"], e["map_width"], e["map_height"]) == ("gradcam", "block5_conv3", 14, 14)
    assert (e["heatmap"]["width"], e["heatmap"]["height"]) == (14, 14)


def test_every_method_and_layer_from_one_run(tmp_path):
    prefix = str(tmp_path / "m")
    layers = "block1_conv1,block3_conv3,block5_conv3"
    ex = explain_json("--method", "all", "--layer", layers, "--map-out", prefix,
                      "--samples", "2", "--steps", "3")
    # a pixel method that takes no layer is made once; the others once per layer
    uses_layer = CAM_METHODS + ["guided-gradcam"]
    expected = {(m, l) for m in uses_layer for l in layers.split(",")}
    expected |= {(m, "input") for m in PIXEL_METHODS if m not in uses_layer}
    assert {(e["method"], e["layer"]) for e in ex} == expected and len(ex) == len(expected)
    for e in ex:
        side = 224 if e["method"] in PIXEL_METHODS else LAYER_SIDE[e["layer"]]
        assert (e["map_width"], e["map_height"]) == (side, side), e["method"]
        data = np.array(e["heatmap"]["data"], dtype=np.float64)
        assert data.size == side * side and np.all(np.isfinite(data))
        assert data.min() >= 0 and data.max() <= 1
        raw = np.fromfile(f"{prefix}.{e['method']}.{e['layer']}.f32", dtype="<f4")
        assert raw.size == side * side
        assert abs(float(raw.max()) - e["raw_max"]) <= 1e-6 * max(1.0, abs(e["raw_max"]))
        if e["raw_max"] > 0:
            assert np.max(np.abs(raw / e["raw_max"] - data)) <= 1e-6


def test_map_out_single_file_is_the_raw_map(tmp_path):
    out = tmp_path / "cam.f32"
    e = explain_json("--layer", "block4_conv3", "--map-out", str(out))[0]
    raw = np.fromfile(out, dtype="<f4")
    assert raw.size == 28 * 28 and e["map_width"] == 28
    assert np.max(np.abs(raw / e["raw_max"] - np.array(e["heatmap"]["data"]))) <= 1e-6


def test_smoothgrad_seed_and_samples_change_the_map():
    a = explain_json("--method", "smoothgrad", "--samples", "3", "--seed", "1")[0]
    b = explain_json("--method", "smoothgrad", "--samples", "3", "--seed", "1")[0]
    c = explain_json("--method", "smoothgrad", "--samples", "3", "--seed", "2")[0]
    assert a == b and a["heatmap"]["data"] != c["heatmap"]["data"]


@pytest.mark.parametrize("metric", ["deletion", "insertion"])
def test_metric_deletion_insertion(metric):
    e = explain_json("--metric", metric, "--metric-steps", "8", "--baseline", "mean")[0]
    m = e["metric"]
    assert m["name"] == metric and 0 <= m["auc"] <= 1 and len(m["curve"]) == 9
    assert all(0 <= p <= 1 for p in m["curve"])


def test_metric_randomization():
    e = explain_json("--metric", "randomization", "--seed", "4")[0]
    curve = e["metric"]["curve"]
    assert len(curve) == 3 + 13 and all(-1 - 1e-9 <= r <= 1 + 1e-9 for r in curve)


def test_text_output_names_the_maps_and_the_metric():
    r = run("explain", "--weights", MODEL, "--image", IMAGE, "--class", "3", "--method",
            "gradcam,layercam", "--layer", "block4_conv3", "--metric", "deletion")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().split("\n")
    assert len(lines) == 5 + 2
    assert lines[5].startswith("class 3 gradcam at block4_conv3: map 28x28") and "deletion AUC" in lines[5]
    assert lines[6].startswith("class 3 layercam at block4_conv3")


@pytest.mark.parametrize("args,words", [
    (("--method", "gradcamx"), ["--method", "gradcamx"]),
    (("--method", "gradcam,,layercam"), ["--method"]),
    (("--method", "GradCAM"), ["--method"]),
    (("--method", "gradcam,gradcam"), ["--method", "twice"]),
    (("--method", ""), ["--method"]),
    (("--layer", "block9_conv1"), ["--layer", "block9_conv1"]),
    (("--layer", "13"), ["--layer", "13"]),
    (("--layer", "-1"), ["--layer"]),
    (("--layer", "1.5"), ["--layer"]),
    (("--layer", ""), ["--layer"]),
    (("--layer", "0,0"), ["--layer", "twice"]),
    (("--layer", "block1_conv1,"), ["--layer"]),
    (("--samples", "0"), ["--samples"]),
    (("--samples", "1025"), ["--samples"]),
    (("--samples", "x"), ["--samples"]),
    (("--steps", "0"), ["--steps"]),
    (("--steps", "99999999999"), ["--steps"]),
    (("--noise", "0"), ["--noise"]),
    (("--noise", "1.5"), ["--noise"]),
    (("--noise", "nan"), ["--noise"]),
    (("--seed", "-1"), ["--seed"]),
    (("--seed", "18446744073709551616"), ["--seed"]),
    (("--seed", "1x"), ["--seed"]),
    (("--metric", "auc"), ["--metric"]),
    (("--metric-steps", "4"), ["--metric-steps", "--metric"]),
    (("--baseline", "mean"), ["--baseline", "--metric"]),
    (("--metric", "deletion", "--metric-steps", "0"), ["--metric-steps"]),
    (("--metric", "deletion", "--baseline", "zero"), ["--baseline"]),
    (("--metric", "randomization", "--baseline", "blur"), ["--baseline"]),
    (("--map-out",), ["needs a value"]),
    (("--map-out", ""), ["--map-out"]),
    (("--top-k", "2", "--map-out", "x.f32"), ["--map-out"]),
])
def test_method_options_errors(args, words):
    assert_one_line_error(run("explain", "--weights", MODEL, "--image", IMAGE, *args), *words)


def test_map_out_to_a_missing_folder_or_full_disk_fails(tmp_path):
    for where in [str(tmp_path / "no" / "such" / "m.f32")] + (["/dev/full"] if os.path.exists("/dev/full") else []):
        r = run_bytes("explain", "--weights", MODEL, "--image", IMAGE, "--map-out", where)
        assert_one_clean_line(r, "cannot write")
        assert b"written" not in r.stdout
