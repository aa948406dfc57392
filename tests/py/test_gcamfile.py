"""weights/gcamfile.py: the format round-trips, the reader refuses what the C loader must
refuse, make_random is deterministic, and the committed fixtures agree with an independent
numpy forward."""

import hashlib
import os
import struct

import numpy as np
import pytest

from conftest import ROOT
import gcamfile
import make_random

FIX = os.path.join(ROOT, "tests", "fixtures", "vgg_small")


def small_net(seed=3):
    convs, denses = make_random.random_vgg("vgg11", seed, width_div=16, input_size=64,
                                           dense=(24,), classes=5)
    return convs, denses


def test_round_trip_f32(tmp_path):
    convs, denses = small_net()
    labels = ["a", "b", "chat noir", "ünïcode", "e"]
    p = tmp_path / "m.gcam"
    sha = gcamfile.write_gcam(p, convs, denses, (64, 64), "caffe", labels=labels)
    m = gcamfile.read_gcam(p)
    assert m.sha256 == sha and m.labels == labels and m.input_hw == (64, 64)
    assert m.preprocess == "caffe" and m.flatten == "hwc" and m.dtype == "f32"
    assert m.mean == tuple(np.float32(gcamfile.CAFFE_MEAN_BGR)) and m.std == (1.0, 1.0, 1.0)
    for (w, b, p_), (w2, b2, p2) in zip(convs, m.convs):
        assert np.array_equal(w, w2) and np.array_equal(b, b2) and p_ == p2
    for (w, b), (w2, b2) in zip(denses, m.denses):
        assert np.array_equal(w, w2) and np.array_equal(b, b2)
    data = p.read_bytes()
    assert data[:8] == b"GCAMVGG\n" and struct.unpack_from("<I", data, 8)[0] == 1
    payload_offset = struct.unpack_from("<Q", data, 16)[0]
    assert payload_offset % 64 == 0
    assert hashlib.sha256(data[64:]).hexdigest() == sha  # FORMAT.md: bytes 64..end


def test_round_trip_f16_and_chw(tmp_path):
    convs, denses = small_net(4)
    hf, wf, c = gcamfile.final_shape((64, 64), convs)
    chw = gcamfile.hwc_rows_to_chw(denses[0][0], hf, wf, c)
    p = tmp_path / "m16.gcam"
    gcamfile.write_gcam(p, convs, [(chw, denses[0][1])] + denses[1:], (64, 64), "torch",
                        flatten="chw", dtype="f16")
    m = gcamfile.read_gcam(p)
    assert m.dtype == "f16" and m.flatten == "chw" and m.labels is None
    assert np.array_equal(m.denses[0][0], chw.astype(np.float16).astype(np.float32))
    assert np.array_equal(m.dense0_hwc(), denses[0][0].astype(np.float16).astype(np.float32))
    assert np.array_equal(m.convs[3][0], convs[3][0].astype(np.float16).astype(np.float32))
    # f16 file is about half the f32 one
    p32 = tmp_path / "m32.gcam"
    gcamfile.write_gcam(p32, convs, denses, (64, 64), "torch")
    assert os.path.getsize(p) < 0.55 * os.path.getsize(p32)


def test_round_trip_int8(tmp_path):
    """int8 files: dense weights int8 + one f32 scale per output, convs f16, dense biases f32;
    the reader widens q * scale; every dense weight within half a step of its scale."""
    convs, denses = small_net(5)
    p = tmp_path / "m8.gcam"
    gcamfile.write_gcam(p, convs, denses, (64, 64), "caffe", dtype="int8")
    m = gcamfile.read_gcam(p)
    assert m.dtype == "int8"
    assert np.array_equal(m.convs[2][0], convs[2][0].astype(np.float16).astype(np.float32))
    for (w, b), (w2, b2) in zip(denses, m.denses):
        q, s = gcamfile.quantize_int8(w)
        assert q.dtype == np.int8 and s.shape == (w.shape[1],) and np.all(s > 0)
        assert np.array_equal(w2, q.astype(np.float32) * s)
        assert np.all(np.abs(w2 - w) <= 0.5 * s * (1 + 1e-6) + 1e-12)
        assert np.array_equal(b2, b.astype(np.float32))
        assert gcamfile.int8_fidelity(w) <= 1 / 254 + 1e-7
    n_tensors = struct.unpack_from("<I", p.read_bytes(), 120)[0]
    assert n_tensors == 2 * (len(convs) + len(denses)) + len(denses)


def test_reader_refuses_bad_int8(tmp_path):
    """the reader refuses zero/NaN/Inf scales and int8 where the format allows none (C side:
    tests/test_model_load.c)"""
    convs, denses = small_net(6)
    p = tmp_path / "m8.gcam"
    gcamfile.write_gcam(p, convs, denses, (64, 64), dtype="int8")
    good = bytearray(p.read_bytes())
    po = struct.unpack_from("<Q", good, 16)[0]
    n_conv, n_dense = len(convs), len(denses)
    table = 128 + 8 * (n_conv + n_dense)

    def entry(name):
        for k in range(struct.unpack_from("<I", good, 120)[0]):
            e = table + 80 * k
            if good[e:e + 40].rstrip(b"\0") == name.encode():
                return e
        raise KeyError(name)

    def resigned(data):
        data[32:64] = hashlib.sha256(bytes(data[64:])).digest()
        return bytes(data)

    e = entry("dense1.scale")
    off = po + struct.unpack_from("<Q", good, e + 64)[0]
    for v, match in [(0.0, "zero scale"), (np.nan, "NaN or Inf"), (np.inf, "NaN or Inf")]:
        d = bytearray(good)
        struct.pack_into("<f", d, off + 4, v)
        with pytest.raises(gcamfile.GcamFileError, match=match):
            gcamfile.parse_gcam(resigned(d))
    d = bytearray(good)
    struct.pack_into("<I", d, entry("conv1.weight") + 40, 2)  # int8 conv weight
    with pytest.raises(gcamfile.GcamFileError, match="not allowed"):
        gcamfile.parse_gcam(resigned(d))
    d = bytearray(good)
    struct.pack_into("<I", d, entry("dense1.scale") + 48, 3)  # scale of the wrong shape
    with pytest.raises(gcamfile.GcamFileError, match="dims"):
        gcamfile.parse_gcam(resigned(d))


def test_writer_refuses_bad_networks(tmp_path):
    convs, denses = small_net()
    p = tmp_path / "x.gcam"
    bad_w = convs[2][0].copy()
    bad_w[0, 0, 0, 0] = np.nan
    cases = [
        ([convs[0], convs[2]] + convs[3:], denses),                 # channels do not chain
        (convs, [(denses[0][0][:-1], denses[0][1])] + denses[1:]),  # dense0 rows wrong
        (convs[:2] + [(bad_w, convs[2][1], convs[2][2])] + convs[3:], denses),   # NaN
    ]
    for cv, de in cases:
        with pytest.raises(gcamfile.GcamFileError):
            gcamfile.write_gcam(p, cv, de, (64, 64))
    with pytest.raises(gcamfile.GcamFileError, match="labels"):
        gcamfile.write_gcam(p, convs, denses, (64, 64), labels=["x"])
    with pytest.raises(gcamfile.GcamFileError, match="pool"):
        gcamfile.write_gcam(p, convs, denses, (8, 8))
    big = [(w * 1e5, b, q) for w, b, q in convs]
    with pytest.raises(gcamfile.GcamFileError, match="overflows f16"):
        gcamfile.write_gcam(p, big, denses, (64, 64), dtype="f16")


def test_reader_refuses_damaged_files(tmp_path):
    convs, denses = small_net()
    p = tmp_path / "m.gcam"
    gcamfile.write_gcam(p, convs, denses, (64, 64), labels=list("abcde"))
    good = p.read_bytes()
    po = struct.unpack_from("<Q", good, 16)[0]

    def refused(data, match):
        with pytest.raises(gcamfile.GcamFileError, match=match):
            gcamfile.parse_gcam(data)

    def resigned(data):
        """the checksum made valid again, so that another check must catch the damage"""
        data[32:64] = hashlib.sha256(bytes(data[64:])).digest()
        return bytes(data)

    refused(b"", "magic")
    refused(b"PK\x03\x04" + good[4:], "magic")
    v2 = bytearray(good)
    struct.pack_into("<I", v2, 8, 2)
    refused(bytes(v2), "version 2, this reader reads version 1: re-run weights/convert.py")
    refused(good[:100], "truncated")
    refused(good[:-1], "header says")
    flip = bytearray(good)
    flip[po + 1000] ^= 0x10
    refused(bytes(flip), "SHA-256")
    dims = bytearray(good)      # conv1.weight's C_out dim (tensor entry 2) 4 -> 5
    ent = 128 + 8 * (len(convs) + len(denses)) + 2 * 80
    struct.pack_into("<I", dims, ent + 40 + 8 + 12, 5)
    refused(resigned(dims), "dims")
    lab = bytearray(good)       # a label's NUL replaced: 4 strings instead of 5
    hb = struct.unpack_from("<I", good, 12)[0]
    lab[hb - 3] = ord("x")
    refused(resigned(lab), "labels")
    pre = bytearray(good)
    struct.pack_into("<I", pre, 88, 7)
    refused(resigned(pre), "preprocess")
    nan = bytearray(good)       # NaN in the payload with a matching hash
    struct.pack_into("<f", nan, po, float("nan"))
    refused(resigned(nan), "NaN")
    size = bytearray(good)      # input height 64 -> 65: consistent, but no longer the same file
    struct.pack_into("<I", size, 64, 65)
    refused(bytes(size), "SHA-256")


def test_make_random_deterministic_and_scaled(tmp_path):
    a, b = tmp_path / "a.gcam", tmp_path / "b.gcam"
    args = ["--arch", "vgg13", "--width-div", "8", "--dense", "32,32", "--classes", "7",
            "--input-size", "96", "--seed", "5"]
    assert make_random.main(args + [str(a)]) == 0
    assert make_random.main(args + [str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    m = gcamfile.read_gcam(a)
    assert [w.shape[3] for w, _, _ in m.convs] == [8, 8, 16, 16, 32, 32, 64, 64, 64, 64]
    assert all(np.all(bias != 0) for _, bias, _ in m.convs)
    # logits O(1) for a caffe-range input
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (96, 96, 3)) - np.array(gcamfile.CAFFE_MEAN_BGR)
    logits, _ = gcamfile.forward_numpy(m, x)
    assert 0.02 < np.max(np.abs(logits)) < 20, logits


def read_manifest():
    facts = {}
    with open(os.path.join(FIX, "manifest.txt")) as f:
        for line in f:
            w = line.split()
            facts.setdefault(w[0], []).append(w[1:])
    return facts


def test_fixtures_agree_with_numpy_forward():
    """The committed fixtures (torch autograd) against gcamfile's float64 numpy forward and
    a numpy Grad-CAM for the logit mode: an independent check of the oracle itself."""
    facts = read_manifest()
    models = {t: gcamfile.read_gcam(os.path.join(FIX, f)) for t, f, *_ in facts["model"]}
    for t, f, pre, flat, dt, *_ , sha in facts["model"]:
        assert models[t].sha256 == sha and models[t].flatten == flat and models[t].dtype == dt
    import reference
    checked = 0
    for tag, img, fname in facts["logits"]:
        m = models[tag]
        image = reference.load_rgb(os.path.join(FIX, dict((i[0], i[1]) for i in facts["image"])[img]))
        x = reference.preprocess(image, m).astype(np.float32)
        inputs = {(t, i): fn for t, i, fn in facts["input"]}
        if (tag, img) in inputs:
            stored = np.fromfile(os.path.join(FIX, inputs[(tag, img)]), "<f4").reshape(x.shape)
            assert np.array_equal(stored, x)
        logits, A = gcamfile.forward_numpy(m, x)
        ref = np.fromfile(os.path.join(FIX, fname), "<f4")
        assert np.max(np.abs(logits - ref)) / np.max(np.abs(ref)) < 1e-6
        for t, i, mode, c, raw_max, grad, raw, cam, ov in facts["explain"]:
            if (t, i) != (tag, img) or mode != "logit":
                continue
            # d logit_c / d A through the head by hand: dense chain (ReLUs) then unflatten
            c = int(c)
            g = _head_grad(m, A, c)
            alpha = g.mean(axis=(0, 1))
            cam_raw = np.maximum((A * alpha).sum(axis=2), 0)
            want = np.fromfile(os.path.join(FIX, cam), "<f4").reshape(cam_raw.shape)
            got = cam_raw / cam_raw.max() if cam_raw.max() > 0 else cam_raw
            assert np.max(np.abs(got - want)) < 1e-5
            assert abs(cam_raw.max() - float(raw_max)) <= 1e-5 * float(raw_max)
            checked += 1
    assert checked == 18          # 3 models x 2 images x 3 classes


def _head_grad(m, A, c):
    """numpy backward of logit c to the last conv's output (pool via argmax)."""
    pool = m.convs[-1][2]
    a = A
    if pool:
        h2, w2 = A.shape[0] // 2, A.shape[1] // 2
        win = A[:2 * h2, :2 * w2].reshape(h2, 2, w2, 2, -1).transpose(0, 2, 4, 1, 3).reshape(
            h2, w2, -1, 4)
        a = win.max(axis=3)
        arg = win.argmax(axis=3)
    v = a.reshape(-1)
    dense = [(m.dense0_hwc(), m.denses[0][1])] + list(m.denses[1:])
    acts = [v]
    for j, (w, b) in enumerate(dense[:-1]):
        v = np.maximum(v @ w + b, 0)
        acts.append(v)
    d = dense[-1][0][:, c].astype(np.float64)
    for j in range(len(dense) - 2, -1, -1):
        d = d * (acts[j + 1] > 0)
        d = dense[j][0] @ d
    d = d.reshape(a.shape)
    if not pool:
        return d
    g = np.zeros(A.shape)
    h2, w2, C = d.shape
    for k in range(4):
        dy, dx = divmod(k, 2)
        sel = arg == k
        g[dy:2 * h2:2, dx:2 * w2:2][sel] = d[sel]
    return g


def test_fixture_size():
    total = sum(os.path.getsize(os.path.join(FIX, f)) for f in os.listdir(FIX))
    print(f"tests/fixtures/vgg_small: {len(os.listdir(FIX))} files, {total} bytes")
    assert total < 3_200_000
