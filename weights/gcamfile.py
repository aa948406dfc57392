"""Reader and writer of the gcam weights file, version 1 (weights/FORMAT.md).

numpy only. The writer checks the network before writing anything; the reader checks
everything the C loader checks (magic, version, sizes, offsets, shapes, labels, SHA-256,
NaN/Inf) and raises GcamFileError with a one-line reason.

    sha = write_gcam("m.gcam", convs=[(w_hwio, b, pool_after), ...],
                     denses=[(w_in_out, b), ...], input_hw=(224, 224),
                     preprocess="caffe", flatten="hwc", labels=None, dtype="f32")
    m = read_gcam("m.gcam")        # m.convs, m.denses (float32 arrays), m.dense0_hwc(), ...

dtype "int8" (FORMAT.md): dense weights symmetric int8, one scale per output feature,
q = round(w / s), s = max_i |w[i, o]| / 127; conv tensors f16, dense biases f32.
"""

import hashlib
import struct
from dataclasses import dataclass, field

import numpy as np

MAGIC = b"GCAMVGG\n"
VERSION = 1
FIXED_HEADER = 128
TENSOR_ENTRY = 80
NAME_BYTES = 40
MAX_HEADER = 16 << 20
MAX_MAP_VALUES = (1 << 31) - 1  # one conv output map (H x W x OC): the kernels index it in int32

PREPROCESS = {"caffe": 0, "torch": 1}
FLATTEN = {"hwc": 0, "chw": 1}
# file dtypes: "int8" files hold dense weights as int8 with one f32 scale per output feature
# (tensor dense{j}.scale), conv weights and all biases but the dense ones as f16
DTYPES = {"f32": 0, "f16": 1, "int8": 2}
DTYPE_NP = {0: np.dtype("<f4"), 1: np.dtype("<f2"), 2: np.dtype("i1")}

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCH_MEAN_RGB = (0.485, 0.456, 0.406)
TORCH_STD_RGB = (0.229, 0.224, 0.225)

# conv widths per arch, "M" = 2x2 max-pool (torchvision's cfgs A, B, D, E)
VGG_CONFIGS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}

# struct layout of the fixed header (FORMAT.md "Fixed header")
_HEADER = struct.Struct("<8sIIQQ32sIIIIIIII3f3fII")
assert _HEADER.size == FIXED_HEADER


class GcamFileError(ValueError):
    """A file (or a network handed to the writer) that breaks weights/FORMAT.md."""


def _align64(n):
    return (n + 63) // 64 * 64


@dataclass
class GcamModel:
    input_hw: tuple
    preprocess: str
    flatten: str
    mean: tuple
    std: tuple
    convs: list           # [(w_hwio float32 (3,3,C,OC), bias (OC), pool_after bool)]
    denses: list          # [(w float32 (IN,OUT) rows as stored, bias (OUT))]
    labels: list = None   # list of str, or None
    dtype: str = "f32"
    sha256: str = ""
    file_bytes: int = 0
    payload_bytes: int = 0
    final_hwc: tuple = field(default=(0, 0, 0))   # (H_f, W_f, C_last) after the last pool

    @property
    def n_classes(self):
        return self.denses[-1][0].shape[1]

    @property
    def cam_hwc(self):
        """(H, W, C) of the last conv's output, the Grad-CAM map (before its pool)."""
        h, w = self.input_hw
        for wgt, _, pool in self.convs[:-1]:
            if pool:
                h, w = h // 2, w // 2
        return (h, w, self.convs[-1][0].shape[3])

    def dense0_hwc(self):
        """dense0's weight with rows in HWC order, whatever the file's flatten."""
        w = self.denses[0][0]
        if self.flatten == "hwc":
            return w
        hf, wf, c = self.final_hwc
        return chw_rows_to_hwc(w, hf, wf, c)


def chw_rows_to_hwc(w, hf, wf, c):
    """(c*hf*wf, OUT) with rows in CHW order -> the same matrix with rows in HWC order."""
    out = w.shape[1]
    return np.ascontiguousarray(w.reshape(c, hf, wf, out).transpose(1, 2, 0, 3).reshape(-1, out))


def hwc_rows_to_chw(w, hf, wf, c):
    out = w.shape[1]
    return np.ascontiguousarray(w.reshape(hf, wf, c, out).transpose(2, 0, 1, 3).reshape(-1, out))


def final_shape(input_hw, convs):
    """(H_f, W_f, C_last) of the flattened tensor, checking every pool leaves >= 1x1."""
    h, w = input_hw
    for i, (wgt, _, pool) in enumerate(convs):
        if pool:
            h, w = h // 2, w // 2
            if h < 1 or w < 1:
                raise GcamFileError(f"pool after conv{i} leaves {h}x{w}: input {input_hw} "
                                    f"too small for this network")
    return (h, w, int(convs[-1][0].shape[3]))


def _check_network(input_hw, convs, denses, labels):
    if not (1 <= input_hw[0] <= 4096 and 1 <= input_hw[1] <= 4096):
        raise GcamFileError(f"input size {input_hw} outside 1..4096")
    if not 1 <= len(convs) <= 64:
        raise GcamFileError(f"{len(convs)} convs: 1..64 allowed")
    if not 1 <= len(denses) <= 16:
        raise GcamFileError(f"{len(denses)} dense layers: 1..16 allowed")
    cin = 3
    h, wd = input_hw
    for i, (w, b, pool) in enumerate(convs):
        if w.ndim != 4 or w.shape[:3] != (3, 3, cin) or not 1 <= w.shape[3] <= 65536:
            raise GcamFileError(f"conv{i}.weight has shape {w.shape}, expected (3, 3, {cin}, OC)")
        if h * wd * w.shape[3] > MAX_MAP_VALUES:
            raise GcamFileError(f"conv{i}: a {wd}x{h}x{w.shape[3]} output map has 2^31 values "
                                f"or more")
        if pool:
            h, wd = h // 2, wd // 2
        if b.shape != (w.shape[3],):
            raise GcamFileError(f"conv{i}.bias has shape {b.shape}, expected ({w.shape[3]},)")
        cin = w.shape[3]
    hf, wf, c = final_shape(input_hw, convs)
    n_in = hf * wf * c
    for j, (w, b) in enumerate(denses):
        if w.ndim != 2 or w.shape[0] != n_in or not 1 <= w.shape[1] <= 1048576:
            raise GcamFileError(f"dense{j}.weight has shape {w.shape}, expected ({n_in}, OUT)")
        if b.shape != (w.shape[1],):
            raise GcamFileError(f"dense{j}.bias has shape {b.shape}, expected ({w.shape[1]},)")
        n_in = w.shape[1]
    if labels is not None and len(labels) != n_in:
        raise GcamFileError(f"{len(labels)} labels for {n_in} classes")


def _tensor_list(convs, denses, dtype="f32"):
    """[(name, array, file dtype name)] in file order (int8: with each dense layer's scales)."""
    out = []
    conv_dt = "f16" if dtype == "int8" else dtype
    for i, (w, b, _) in enumerate(convs):
        out += [(f"conv{i}.weight", w, conv_dt), (f"conv{i}.bias", b, conv_dt)]
    for j, (w, b) in enumerate(denses):
        if dtype == "int8":
            q, scale = quantize_int8(w)
            out += [(f"dense{j}.weight", q, "int8"), (f"dense{j}.scale", scale, "f32"),
                    (f"dense{j}.bias", b, "f32")]
        else:
            out += [(f"dense{j}.weight", w, dtype), (f"dense{j}.bias", b, dtype)]
    return out


def quantize_int8(w):
    """w (IN, OUT) -> (q int8 (IN, OUT), scale float32 (OUT)): symmetric, per output feature,
    s = max_i |w[i, o]| / 127 (1 for an all-zero column: any non-zero scale serves)."""
    w = np.asarray(w, dtype=np.float64)
    amax = np.abs(w).max(axis=0)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale.astype(np.float64)), -127, 127).astype(np.int8)
    return q, scale


def int8_fidelity(w):
    """max |w - q*s| / max |w| of a dense weight quantized by quantize_int8 (<= 1/254)."""
    q, s = quantize_int8(w)
    w = np.asarray(w, dtype=np.float64)
    amax = np.abs(w).max()
    return float(np.abs(w - q.astype(np.float64) * s).max() / amax) if amax > 0 else 0.0


def write_gcam(path, convs, denses, input_hw=(224, 224), preprocess="caffe", mean=None,
               std=None, flatten="hwc", labels=None, dtype="f32"):
    """Write a gcam file; returns the file's SHA-256 (of bytes 64..end, hex).

    convs: [(w_hwio (3,3,C,OC), bias (OC), pool_after)], denses: [(w (IN,OUT), bias (OUT))];
    dense0's rows must already be in the order `flatten` names. mean/std default to the
    preprocessing's standard values, in the tensor's channel order (BGR for caffe)."""
    if preprocess not in PREPROCESS:
        raise GcamFileError(f"preprocess {preprocess!r}: 'caffe' or 'torch'")
    if flatten not in FLATTEN:
        raise GcamFileError(f"flatten {flatten!r}: 'hwc' or 'chw'")
    if dtype not in DTYPES:
        raise GcamFileError(f"dtype {dtype!r}: 'f32', 'f16' or 'int8'")
    if mean is None:
        mean = CAFFE_MEAN_BGR if preprocess == "caffe" else TORCH_MEAN_RGB
    if std is None:
        std = (1.0, 1.0, 1.0) if preprocess == "caffe" else TORCH_STD_RGB
    mean = tuple(float(v) for v in mean)
    std = tuple(float(v) for v in std)
    if len(mean) != 3 or len(std) != 3 or not all(np.isfinite(mean + std)) \
            or any(s == 0 for s in std):
        raise GcamFileError(f"mean {mean} / std {std}: 3 finite values each, std non-zero")
    input_hw = (int(input_hw[0]), int(input_hw[1]))
    convs = [(np.asarray(w), np.asarray(b), bool(p)) for w, b, p in convs]
    denses = [(np.asarray(w), np.asarray(b)) for w, b in denses]
    _check_network(input_hw, convs, denses, labels)

    for name, arr in [(f"conv{i}", c[0]) for i, c in enumerate(convs)] + \
            [(f"dense{j}", d[0]) for j, d in enumerate(denses)]:
        if arr.dtype.kind not in "fiu":
            raise GcamFileError(f"{name}.weight: dtype {arr.dtype} is not numeric")
        if not np.all(np.isfinite(arr)):
            raise GcamFileError(f"{name}.weight holds NaN or Inf")
    tensors = []
    for name, arr, dt in _tensor_list(convs, denses, dtype):
        if arr.dtype.kind not in "fiu":
            raise GcamFileError(f"{name}: dtype {arr.dtype} is not numeric")
        if not np.all(np.isfinite(arr)):
            raise GcamFileError(f"{name} holds NaN or Inf")
        with np.errstate(over="ignore"):
            stored = np.ascontiguousarray(arr, dtype=DTYPE_NP[DTYPES[dt]])
        if dt != "int8" and not np.all(np.isfinite(stored)):
            raise GcamFileError(f"{name} overflows {dt} (max |x| = {np.abs(arr).max():g})")
        tensors.append((name, stored, dt))

    # payload: each tensor at a 64-byte aligned offset
    offsets, pos = [], 0
    for _, t, _ in tensors:
        pos = _align64(pos)
        offsets.append(pos)
        pos += t.nbytes
    payload = bytearray(pos)
    for (_, t, _), off in zip(tensors, offsets):
        payload[off:off + t.nbytes] = t.tobytes()
    label_blob = b""
    if labels is not None:
        for s in labels:
            enc = str(s).encode("utf-8")
            if b"\0" in enc:
                raise GcamFileError(f"label {s!r} contains a NUL")
            label_blob += enc + b"\0"

    n_tensors = len(tensors)
    header_bytes = (FIXED_HEADER + 8 * len(convs) + 8 * len(denses)
                    + TENSOR_ENTRY * n_tensors + len(label_blob))
    if header_bytes > MAX_HEADER:
        raise GcamFileError(f"header of {header_bytes} bytes exceeds 16 MiB (labels too long)")
    payload_offset = _align64(header_bytes)

    head = bytearray(_HEADER.pack(
        MAGIC, VERSION, header_bytes, payload_offset, len(payload), b"\0" * 32,
        input_hw[0], input_hw[1], 3, len(convs), len(denses), int(denses[-1][0].shape[1]),
        PREPROCESS[preprocess], FLATTEN[flatten], *mean, *std, n_tensors, len(label_blob)))
    for w, _, pool in convs:
        head += struct.pack("<II", w.shape[3], 1 if pool else 0)
    for w, _ in denses:
        head += struct.pack("<II", w.shape[1], 0)
    for (name, t, dt), off in zip(tensors, offsets):
        dims = list(t.shape) + [0] * (4 - t.ndim)
        head += struct.pack("<40sII4IQQ", name.encode("ascii"), DTYPES[dt], t.ndim, *dims,
                            off, t.nbytes)
    head += label_blob
    assert len(head) == header_bytes
    head += b"\0" * (payload_offset - header_bytes)
    # the checksum covers everything after the first 64 bytes (FORMAT.md)
    h = hashlib.sha256(head[64:])
    h.update(payload)
    sha = h.digest()
    head[32:64] = sha
    with open(path, "wb") as f:
        f.write(head)
        f.write(payload)
    return sha.hex()


def parse_gcam(data):
    """Validate and decode a whole file held in memory (bytes); returns a GcamModel."""
    data = memoryview(data)
    n = len(data)
    if n < 12 or bytes(data[:8]) != MAGIC:
        raise GcamFileError("not a gcam weights file (bad magic)")
    version = struct.unpack_from("<I", data, 8)[0]
    if version != VERSION:
        raise GcamFileError(f"file is version {version}, this reader reads version {VERSION}: "
                            f"re-run weights/convert.py")
    if n < FIXED_HEADER:
        raise GcamFileError(f"truncated: {n} bytes, the fixed header alone is {FIXED_HEADER}")
    (_, _, header_bytes, payload_offset, payload_bytes, sha, ih, iw, ic, n_conv, n_dense,
     n_classes, pre, flat, m0, m1, m2, s0, s1, s2, n_tensors, labels_bytes) = \
        _HEADER.unpack_from(data, 0)
    if not FIXED_HEADER <= header_bytes <= MAX_HEADER:
        raise GcamFileError(f"header_bytes {header_bytes} outside 128..16 MiB")
    if header_bytes > n:
        raise GcamFileError(f"truncated: header needs {header_bytes} bytes, file has {n}")
    if payload_offset != _align64(header_bytes):
        raise GcamFileError(f"payload_offset {payload_offset} != align64({header_bytes})")
    if payload_offset + payload_bytes != n:
        raise GcamFileError(f"file is {n} bytes, header says "
                            f"{payload_offset} + {payload_bytes} = {payload_offset + payload_bytes}")
    if not (1 <= ih <= 4096 and 1 <= iw <= 4096) or ic != 3:
        raise GcamFileError(f"input {ih}x{iw}x{ic}: 1..4096 x 1..4096 x 3 expected")
    if not 1 <= n_conv <= 64 or not 1 <= n_dense <= 16:
        raise GcamFileError(f"n_conv {n_conv} (1..64) / n_dense {n_dense} (1..16)")
    if not 2 * (n_conv + n_dense) <= n_tensors <= 2 * (n_conv + n_dense) + n_dense:
        raise GcamFileError(f"n_tensors {n_tensors}: 2 * ({n_conv} + {n_dense}), plus one "
                            f"scale per int8 dense layer")
    if pre not in PREPROCESS.values() or flat not in FLATTEN.values():
        raise GcamFileError(f"unknown preprocess {pre} or flatten {flat}")
    mean, std = (m0, m1, m2), (s0, s1, s2)
    if not all(np.isfinite(mean + std)) or any(s == 0 for s in std):
        raise GcamFileError(f"mean {mean} / std {std} must be finite, std non-zero")
    expect = (FIXED_HEADER + 8 * (n_conv + n_dense) + TENSOR_ENTRY * n_tensors + labels_bytes)
    if expect != header_bytes:
        raise GcamFileError(f"header_bytes {header_bytes}, tables and labels need {expect}")

    pos = FIXED_HEADER
    conv_table = []
    for i in range(n_conv):
        oc, flags = struct.unpack_from("<II", data, pos)
        pos += 8
        if not 1 <= oc <= 65536 or flags & ~1:
            raise GcamFileError(f"conv{i}: out_channels {oc} / flags {flags:#x} invalid")
        conv_table.append((oc, bool(flags & 1)))
    dense_table = []
    for j in range(n_dense):
        of, flags = struct.unpack_from("<II", data, pos)
        pos += 8
        if not 1 <= of <= 1048576 or flags != 0:
            raise GcamFileError(f"dense{j}: out_features {of} / flags {flags:#x} invalid")
        dense_table.append(of)
    if dense_table[-1] != n_classes:
        raise GcamFileError(f"n_classes {n_classes} != last dense width {dense_table[-1]}")

    # expected shapes from the network description
    h, w = ih, iw
    shapes, cin = [], 3
    for i, (oc, pool) in enumerate(conv_table):
        if h * w * oc > MAX_MAP_VALUES:
            raise GcamFileError(f"conv{i}: a {w}x{h}x{oc} output map has 2^31 values or more")
        shapes += [(f"conv{i}.weight", (3, 3, cin, oc)), (f"conv{i}.bias", (oc,))]
        cin = oc
        if pool:
            h, w = h // 2, w // 2
            if h < 1 or w < 1:
                raise GcamFileError(f"pool after conv{i} leaves {h}x{w}")
    final_hwc = (h, w, cin)
    nin = h * w * cin
    for j, of in enumerate(dense_table):
        shapes += [(f"dense{j}.weight", (nin, of)), (f"dense{j}.bias", (of,))]
        nin = of
    # allowed dtypes: int8 only for dense weights, whose scales (dense{j}.scale) are f32
    allowed = {name: ({0, 1, 2} if name.startswith("dense") and name.endswith("weight")
                      else {0, 1}) for name, _ in shapes}

    payload = data[payload_offset:]
    if hashlib.sha256(data[64:]).digest() != sha:
        raise GcamFileError("SHA-256 mismatch: the file is corrupt")
    arrays, end, dtypes = {}, 0, set()
    shapes = list(shapes)
    k = 0
    while k < len(shapes):
        name, shape = shapes[k]
        raw = struct.unpack_from("<40sII4IQQ", data, pos)
        pos += TENSOR_ENTRY
        tname = raw[0].rstrip(b"\0").decode("ascii", "replace")
        dt, ndim, dims, off, nbytes = raw[1], raw[2], tuple(raw[3:7]), raw[7], raw[8]
        if raw[0] != name.encode("ascii").ljust(NAME_BYTES, b"\0"):
            raise GcamFileError(f"tensor {k} is named {tname!r}, expected {name!r}")
        if dt not in DTYPE_NP:
            raise GcamFileError(f"{name}: unknown dtype {dt}")
        if dt not in allowed.get(name, {0}):
            raise GcamFileError(f"{name}: dtype {dt} is not allowed here (int8 is for dense "
                                f"weights only; scales are f32)")
        if dt == 2:  # its scales come next
            shapes.insert(k + 1, (name.replace(".weight", ".scale"), (shape[1],)))
        if len(shapes) > n_tensors:
            raise GcamFileError(f"n_tensors {n_tensors}, the network and its int8 layers need "
                                f"more")
        if ndim != len(shape) or dims != tuple(shape) + (0,) * (4 - len(shape)):
            raise GcamFileError(f"{name}: dims {dims[:ndim]} but the network says {shape}")
        if nbytes != int(np.prod(shape)) * DTYPE_NP[dt].itemsize:
            raise GcamFileError(f"{name}: nbytes {nbytes} does not match its shape")
        if off % 64 or off < end or off + nbytes > payload_bytes:
            raise GcamFileError(f"{name}: offset {off} (+{nbytes}) misaligned, overlapping or "
                                f"outside the payload of {payload_bytes} bytes")
        end = off + nbytes
        arr = np.frombuffer(payload, dtype=DTYPE_NP[dt], count=int(np.prod(shape)),
                            offset=off).reshape(shape).astype(np.float32)
        if not np.all(np.isfinite(arr)):
            raise GcamFileError(f"{name} holds NaN or Inf")
        if name.endswith(".scale") and np.any(arr == 0):
            raise GcamFileError(f"{name} holds a zero scale")
        arrays[name] = arr
        if not name.endswith(".scale"):
            dtypes.add(dt)
        k += 1
    if len(shapes) != n_tensors:
        raise GcamFileError(f"n_tensors {n_tensors}, the network and its int8 layers need "
                            f"{len(shapes)}")
    for j in range(n_dense):  # int8 weights widened: q * scale
        if f"dense{j}.scale" in arrays:
            arrays[f"dense{j}.weight"] = arrays[f"dense{j}.weight"] * arrays[f"dense{j}.scale"]

    labels = None
    if labels_bytes:
        blob = bytes(data[pos:pos + labels_bytes])
        nuls = blob.count(b"\0")
        if blob[-1:] != b"\0" or nuls != n_classes:
            raise GcamFileError(f"labels: {nuls} NUL-terminated strings, expected {n_classes}")
        labels = [s.decode("utf-8") for s in blob[:-1].split(b"\0")]

    inv_pre = {v: k for k, v in PREPROCESS.items()}
    inv_flat = {v: k for k, v in FLATTEN.items()}
    return GcamModel(
        input_hw=(ih, iw), preprocess=inv_pre[pre], flatten=inv_flat[flat], mean=mean, std=std,
        convs=[(arrays[f"conv{i}.weight"], arrays[f"conv{i}.bias"], conv_table[i][1])
               for i in range(n_conv)],
        denses=[(arrays[f"dense{j}.weight"], arrays[f"dense{j}.bias"]) for j in range(n_dense)],
        labels=labels, dtype=("f16" if dtypes == {1} else "f32" if dtypes == {0}
                              else "int8" if 2 in dtypes else "mixed"),
        sha256=sha.hex(), file_bytes=n, payload_bytes=payload_bytes, final_hwc=final_hwc)


def read_gcam(path):
    """Read and validate a gcam file; returns a GcamModel (weights widened to float32)."""
    with open(path, "rb") as f:
        return parse_gcam(f.read())


def forward_numpy(model, x_hwc):
    """Reference forward in float64 numpy on a preprocessed (H, W, 3) tensor: returns
    (logits, last conv's post-ReLU output (H, W, C)). Slow but simple; used by tests."""
    a = np.asarray(x_hwc, dtype=np.float64)
    last = None
    for w, b, pool in model.convs:
        h, wd, c = a.shape
        p = np.pad(a, ((1, 1), (1, 1), (0, 0)))
        acc = np.zeros((h, wd, w.shape[3]))
        for dy in range(3):
            for dx in range(3):
                acc += p[dy:dy + h, dx:dx + wd, :] @ w[dy, dx].astype(np.float64)
        a = np.maximum(acc + b, 0.0)
        last = a
        if pool:
            h2, w2 = h // 2, wd // 2
            a = a[:2 * h2, :2 * w2].reshape(h2, 2, w2, 2, -1).max(axis=(1, 3))
    v = a.reshape(-1)
    dense = [(model.dense0_hwc(), model.denses[0][1])] + list(model.denses[1:])
    for j, (w, b) in enumerate(dense):
        v = v @ w.astype(np.float64) + b
        if j < len(dense) - 1:
            v = np.maximum(v, 0.0)
    return v, last


if __name__ == "__main__":
    import sys
    for p in sys.argv[1:]:
        m = read_gcam(p)
        print(f"{p}: {m.file_bytes} bytes, {m.dtype}, input {m.input_hw}, "
              f"{len(m.convs)} convs {[w.shape[3] for w, _, _ in m.convs]}, "
              f"dense {[w.shape[1] for w, _ in m.denses]}, {m.preprocess}/{m.flatten}, "
              f"labels {'yes' if m.labels else 'no'}, sha256 {m.sha256}")
