"""Shared set-up for the Python tests: paths, the CLI, and the comparison the issues define.

Run: /usr/bin/python3 -m pytest tests/py        (GCAM_CLI=path overrides build/gcam)
     /usr/bin/python3 -m pytest tests/py -m "not full"   skips the full-size VGG16 files
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for sub in ("weights", os.path.join("tests", "oracle"), os.path.join("tests", "py")):
    p = os.path.join(ROOT, sub)
    if p not in sys.path:
        sys.path.insert(0, p)

LOGIT_RTOL = 1e-4     # max |logit - ref| / max |ref logit|
CAM_ATOL = 1e-3       # normalized heatmap, absolute


def pytest_configure(config):
    config.addinivalue_line("markers", "full: full-size VGG16 files (~553 MB each, in a tmp dir)")


def cli_path():
    return os.environ.get("GCAM_CLI", os.path.join(ROOT, "build", "gcam"))


def run_cli_json(weights, image, top_k=5, score="logit"):
    """`gcam explain --json`; fails the test (never skips) when the CLI is missing."""
    exe = cli_path()
    if not os.access(exe, os.X_OK):
        pytest.fail(f"{exe} not found: build the CLI first (README's build command, or "
                    f"set GCAM_CLI=/path/to/gcam)")
    cmd = [exe, "explain", "--weights", str(weights), "--image", str(image), "--json",
           "--top-k", str(top_k), "--score", score]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.strip()}")
    out = json.loads(r.stdout)
    preds = out["predictions"]
    result = {
        "top": [p["index"] for p in preds],
        "logits": {p["index"]: p["logit"] for p in preds},
        "labels": {p["index"]: p.get("label") for p in preds},
        "cams": {}, "raw_max": {},
    }
    for e in out["explanations"]:
        hm = e["heatmap"]
        result["cams"][e["class"]] = np.array(hm["data"], dtype=np.float64).reshape(
            hm["height"], hm["width"])
        result["raw_max"][e["class"]] = e["raw_max"]
    return result


def compare(cand, ref_logits, ref_cams, k=5):
    """The issue's acceptance test. cand: {'top', 'logits' {cls: v}, 'cams' {cls: map}}.
    Returns (problems, figures): problems empty when top-k equal, logits within 1e-4
    relative, heatmaps within 1e-3."""
    problems = []
    ref_top = [int(c) for c in np.argsort(-ref_logits, kind="stable")[:k]]
    if list(cand["top"][:k]) != ref_top:
        problems.append(f"top-{k} {list(cand['top'][:k])} != reference {ref_top}")
    scale = float(np.max(np.abs(ref_logits)))
    lerr = max(abs(v - ref_logits[c]) for c, v in cand["logits"].items()) / scale
    if not lerr <= LOGIT_RTOL:
        problems.append(f"logits differ by {lerr:.3g} relative (> {LOGIT_RTOL})")
    cerr = 0.0
    for c, m in cand["cams"].items():
        if c not in ref_cams:
            problems.append(f"no reference map for class {c}")
            continue
        cerr = max(cerr, float(np.max(np.abs(m - ref_cams[c]))))
    if not cerr <= CAM_ATOL:
        problems.append(f"heatmaps differ by {cerr:.3g} (> {CAM_ATOL})")
    return problems, {"logit_rel": lerr, "cam_abs": cerr}


def python_candidate(gcam_path, img_rgb, classes, mode="logit"):
    """What the converted file computes, without the C library: gcamfile.read_gcam and the
    torch oracle (float64) with OpenCV preprocessing. Used to test the converter alone."""
    import gcamfile
    import reference
    m = gcamfile.read_gcam(gcam_path)
    x = reference.preprocess(img_rgb, m)
    r = reference.gradcam(m, x, list(classes), (mode,))
    top = [int(c) for c in np.argsort(-r.logits, kind="stable")]
    return {"top": top, "logits": {c: float(r.logits[c]) for c in top},
            "cams": {c: r.maps[(mode, c)].cam for c in classes},
            "all_logits": r.logits, "model": m}


@pytest.fixture
def image_file(tmp_path):
    import cv2
    import sources
    img = sources.sample_image(131, 97)
    p = tmp_path / "img.png"
    cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return p, img
