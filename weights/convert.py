#!/usr/bin/python3
"""Convert a VGG's weights from Keras or torchvision into the gcam format (weights/FORMAT.md).

    convert.py SRC OUT [--dtype f32|f16|int8] [--labels FILE] [--input-size N]

SRC is recognised by its content, not its name:
  - HDF5 (Keras): the published `vgg16_weights_tf_dim_ordering_tf_kernels.h5` layout
    (root attr `layer_names`, per-layer `weight_names` like `block1_conv1_W_1:0`), the
    Keras 2 `save_weights` layout (`block1_conv1/block1_conv1/kernel:0`), or Keras 3's
    `.weights.h5` (`layers/<name>/vars/0`, `vars/1`; `_layer_checkpoint_dependencies/` in
    tf.keras 2.13-2.15). Written as caffe preprocessing (BGR minus the ImageNet mean), HWC.
  - zip or pickle (torch): a torchvision VGG state dict (`features.N.*`, `classifier.N.*`,
    VGG11/13/16/19 with or without batch norm, which is folded into the convs), loaded with
    torch.load(weights_only=True). Written as torch preprocessing, fc1's rows permuted from
    torch's CHW flatten into HWC.
Labels: torchvision's bundled ImageNet categories for 1000-class networks, or --labels (a
JSON list of names or Keras's imagenet_class_index.json). Nothing is downloaded; no pickled
code runs; NaN/Inf, HDF5 external links and unexpected shapes or dtypes are refused with
one line on stderr and exit code 2.
"""

import argparse
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcamfile  # noqa: E402

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
BN_EPS = 1e-5                      # torchvision's BatchNorm2d default
ACCEPTED_DTYPES = ("float16", "float32", "float64")


class ConvertError(Exception):
    """A source the converter refuses; the message is the one line the user sees."""


class Network:
    """A VGG in canonical layout: convs [(w_hwio, b, pool_after)], denses [(w_in_out, b)]
    with dense0's rows in HWC order."""

    def __init__(self, convs, denses, preprocess, source):
        self.convs, self.denses, self.preprocess, self.source = convs, denses, preprocess, source


# ---- detection --------------------------------------------------------------------------------

def detect(path):
    """'hdf5' or 'torch' from the file's first bytes."""
    with open(path, "rb") as f:
        head = f.read(8)
        if head == HDF5_MAGIC:
            return "hdf5"
        # HDF5 allows a user block of 512, 1024, 2048, ... bytes before the superblock
        off = 512
        size = os.path.getsize(path)
        while off + 8 <= size and off <= (1 << 20):
            f.seek(off)
            if f.read(8) == HDF5_MAGIC:
                return "hdf5"
            off *= 2
    if head[:4] == b"PK\x03\x04":          # torch >= 1.6 zip container
        import zipfile
        try:
            names = zipfile.ZipFile(path).namelist()
        except zipfile.BadZipFile:
            names = []
        if "model.weights.h5" in names:
            raise ConvertError(f"{path} is a Keras .keras archive: extract its model.weights.h5 "
                               f"(unzip {os.path.basename(path)} model.weights.h5) and convert that")
        return "torch"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "torch"                       # legacy torch pickle container
    raise ConvertError(f"{path}: neither HDF5 (Keras) nor a torch file "
                       f"(first bytes {head[:8].hex()})")


# ---- shared checks ------------------------------------------------------------------------------

def _as_float_array(name, arr):
    arr = np.asarray(arr)
    if arr.dtype.name not in ACCEPTED_DTYPES:
        raise ConvertError(f"{name}: dtype {arr.dtype} (expected float16/32/64)")
    if not np.all(np.isfinite(arr)):
        raise ConvertError(f"{name} holds NaN or Inf")
    return arr


def _check_chain(convs, denses, input_size, what):
    """Shapes must chain: 3 -> conv widths -> flatten -> dense widths."""
    cin = 3
    for i, (w, b, _) in enumerate(convs):
        if w.ndim != 4 or w.shape[:2] != (3, 3) or w.shape[2] != cin or b.shape != (w.shape[3],):
            raise ConvertError(f"{what}: conv {i} has kernel {w.shape} and bias {b.shape}, "
                               f"expected (3, 3, {cin}, OC) and (OC,): not a VGG")
        cin = w.shape[3]
    try:
        hf, wf, c = gcamfile.final_shape((input_size, input_size), convs)
    except gcamfile.GcamFileError as e:
        raise ConvertError(f"{what}: {e}")
    n_in = hf * wf * c
    for j, (w, b) in enumerate(denses):
        if w.ndim != 2 or b.shape != (w.shape[1],):
            raise ConvertError(f"{what}: dense {j} has weight {w.shape} and bias {b.shape}")
        if w.shape[0] != n_in:
            if j == 0:
                raise ConvertError(
                    f"{what}: the first dense layer takes {w.shape[0]} inputs but the last "
                    f"conv gives {c} x {hf} x {wf} = {n_in} at input size {input_size}: "
                    f"pass the --input-size the network was trained for")
            raise ConvertError(f"{what}: dense {j} takes {w.shape[0]} inputs, the previous "
                               f"layer gives {n_in}")
        n_in = w.shape[1]
    return hf, wf, c


def infer_pools(widths, n_pools, what):
    """Pool positions for a conv stack whose file does not say where the pools are (Keras 3):
    the torchvision/Keras VGG config with that many convs, widths equal up to one divisor."""
    for name, cfg in gcamfile.VGG_CONFIGS.items():
        std = [v for v in cfg if v != "M"]
        if len(std) != len(widths) or std[0] % widths[0]:
            continue
        div = std[0] // widths[0]
        if [max(1, s // div) for s in std] != list(widths):
            continue
        pools, k = [False] * len(widths), -1
        for v in cfg:
            if v == "M":
                pools[k] = True
            else:
                k += 1
        if n_pools is not None and sum(pools) != n_pools:
            continue
        return pools
    raise ConvertError(f"{what}: {len(widths)} convs of widths {list(widths)} with "
                       f"{n_pools} pools match no VGG11/13/16/19 config")


# ---- Keras HDF5 ---------------------------------------------------------------------------------

def _natural_key(s):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def _check_no_links(h5, f):
    """Refuse external/soft links, external storage and virtual datasets anywhere."""
    def walk(group, prefix):
        for name in group:
            link = group.get(name, getlink=True)
            full = f"{prefix}/{name}"
            if isinstance(link, h5.ExternalLink):
                raise ConvertError(f"HDF5 external link {full} -> {link.filename}:{link.path}: "
                                   f"refused")
            if isinstance(link, h5.SoftLink):
                raise ConvertError(f"HDF5 soft link {full} -> {link.path}: refused")
            obj = group[name]
            if isinstance(obj, h5.Group):
                walk(obj, full)
            elif isinstance(obj, h5.Dataset):
                if obj.external or obj.is_virtual:
                    raise ConvertError(f"HDF5 dataset {full} stores its data outside the file: "
                                       f"refused")
    walk(f, "")


def _read_name_attr(node, key):
    """A Keras name-list attribute, possibly chunked as key0, key1, ... (Keras splits
    attributes over HDF5's 64 KB limit)."""
    if key in node.attrs:
        vals = list(node.attrs[key])
    else:
        vals, i = [], 0
        while f"{key}{i}" in node.attrs:
            vals += list(node.attrs[f"{key}{i}"])
            i += 1
        if i == 0:
            return None
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in vals]


def _keras_layer_list(f):
    """[(layer name, [arrays in weight_names order])] from a layer_names-style file."""
    root = f
    if _read_name_attr(f, "layer_names") is None and "model_weights" in f:
        root = f["model_weights"]           # a whole-model .h5 saved by model.save()
    names = _read_name_attr(root, "layer_names")
    layers = []
    for ln in names:
        if ln not in root:
            raise ConvertError(f"layer {ln!r} is listed in layer_names but missing from the file")
        g = root[ln]
        wnames = _read_name_attr(g, "weight_names") or []
        arrays = []
        for wn in wnames:
            if wn not in g:
                raise ConvertError(f"weight {ln}/{wn} is listed but missing")
            ds = g[wn]
            arrays.append(_as_float_array(f"{ln}/{wn}", ds[()]))
        layers.append((ln, arrays))
    return layers


def _keras3_layer_list(f):
    """Keras 3 .weights.h5: layers/<class_name[_k]>/vars/<i>; group names are per-class
    counters, so the network order is recovered per class by the counter."""
    top = "layers" if "layers" in f else "_layer_checkpoint_dependencies"
    layers = []
    for ln in sorted(f[top], key=_natural_key):
        g = f[top][ln]
        if not hasattr(g, "keys"):
            raise ConvertError(f"{top}/{ln} is not a group")
        arrays = []
        if "vars" in g:
            keys = sorted(g["vars"], key=int)
            if keys != [str(i) for i in range(len(keys))]:
                raise ConvertError(f"{top}/{ln}/vars holds {keys}, expected 0..n-1")
            arrays = [_as_float_array(f"{top}/{ln}/vars/{k}", g["vars"][k][()]) for k in keys]
        layers.append((ln, arrays))
    return layers


def _keras_network(layers, input_size, style, exact_pools):
    convs, denses, pools_seen = [], [], 0
    for ln, arrays in layers:
        if not arrays:
            low = ln.lower()
            if "pool" in low:
                if "global" in low or "average" in low or "avg" in low:
                    raise ConvertError(f"layer {ln!r}: average/global pooling is not VGG")
                pools_seen += 1
                if exact_pools:
                    if not convs or denses:
                        raise ConvertError(f"pool layer {ln!r} is not between two convs")
                    w, b, _ = convs[-1]
                    convs[-1] = (w, b, True)
            continue
        if len(arrays) != 2:
            raise ConvertError(f"layer {ln!r} has {len(arrays)} weight arrays "
                               f"({[a.shape for a in arrays]}): not a VGG conv or dense layer")
        w, b = arrays
        if w.ndim == 4:
            if denses:
                raise ConvertError(f"conv layer {ln!r} after a dense layer: not a VGG")
            convs.append((w, b, False))
        elif w.ndim == 2:
            denses.append((w, b))
        else:
            raise ConvertError(f"layer {ln!r} has a kernel of shape {w.shape}: not a VGG")
    if not convs or not denses:
        raise ConvertError(f"{style}: found {len(convs)} convs and {len(denses)} dense layers: "
                           f"a VGG with its classifier needs both (was it saved with "
                           f"include_top=False?)")
    if not exact_pools:
        pools = infer_pools([w.shape[3] for w, _, _ in convs], pools_seen, style)
        convs = [(w, b, p) for (w, b, _), p in zip(convs, pools)]
    _check_chain(convs, denses, input_size, style)
    return Network(convs, denses, "caffe", style)


def read_keras(path, input_size):
    import h5py
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ConvertError(f"{path}: cannot open as HDF5 ({e})")
    with f:
        _check_no_links(h5py, f)
        if _read_name_attr(f, "layer_names") is not None or (
                "model_weights" in f and _read_name_attr(f["model_weights"],
                                                         "layer_names") is not None):
            layers = _keras_layer_list(f)
            flat = [wn for _, arrays in layers for wn in arrays]
            style = "Keras .h5 (layer_names)"
            if not flat:
                raise ConvertError(f"{style}: no weights in the file")
            return _keras_network(layers, input_size, style, exact_pools=True)
        if "layers" in f or "_layer_checkpoint_dependencies" in f:
            layers = _keras3_layer_list(f)
            return _keras_network(layers, input_size, "Keras 3 .weights.h5",
                                  exact_pools=False)
        raise ConvertError(f"{path}: HDF5 without Keras weights (no layer_names attribute, "
                           f"no layers/ group; found {sorted(f)[:6]})")


# ---- torchvision --------------------------------------------------------------------------------

def torch_fc1_rows_to_hwc(w_in_out, hf, wf, c):
    """torch flattens NCHW: fc1's input row (c*hf + h)*wf + w. The core computes in HWC."""
    return gcamfile.chw_rows_to_hwc(w_in_out, hf, wf, c)


def read_torch(path, input_size):
    import torch
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:      # UnpicklingError for anything that is not plain tensors
        raise ConvertError(f"{path}: torch.load(weights_only=True) refused it "
                           f"({str(e).splitlines()[0][:200]})")
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ConvertError(f"{path}: not a state dict of tensors")
    sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}

    pat = re.compile(r"^(features|classifier)\.(\d+)\.(weight|bias|running_mean|running_var|"
                     r"num_batches_tracked)$")
    feats, cls, unknown = {}, {}, []
    for k, v in sd.items():
        m = pat.match(k)
        if not m:
            unknown.append(k)
            continue
        if m.group(3) == "num_batches_tracked":
            continue
        if v.dtype not in (torch.float16, torch.float32, torch.float64, torch.bfloat16):
            raise ConvertError(f"{k}: dtype {v.dtype} (expected floating point)")
        arr = _as_float_array(k, v.detach().to(torch.float64).numpy())
        (feats if m.group(1) == "features" else cls).setdefault(int(m.group(2)), {})[
            m.group(3)] = arr
    if unknown:
        raise ConvertError(f"not a torchvision VGG state dict: unexpected keys "
                           f"{', '.join(sorted(unknown)[:5])}"
                           f"{' ...' if len(unknown) > 5 else ''}")
    if not feats or not cls:
        raise ConvertError("not a torchvision VGG state dict: no features.* or classifier.* keys")

    conv_idx = sorted(i for i, p in feats.items() if p.get("weight") is not None
                      and p["weight"].ndim == 4)
    bn_idx = sorted(i for i, p in feats.items() if "running_mean" in p)
    bn = bool(bn_idx)
    if bn and bn_idx != [i + 1 for i in conv_idx]:
        raise ConvertError(f"batch norms at features {bn_idx} do not follow the convs at "
                           f"{conv_idx}")
    if set(feats) != set(conv_idx) | set(bn_idx):
        raise ConvertError(f"features entries {sorted(set(feats) - set(conv_idx) - set(bn_idx))} "
                           f"are neither conv nor batch norm")
    step = 3 if bn else 2            # conv, [bn,] relu -> next layer index
    convs = []
    for n, i in enumerate(conv_idx):
        p = feats[i]
        if set(p) != {"weight", "bias"}:
            raise ConvertError(f"features.{i} has {sorted(p)}, expected weight and bias")
        w, b = p["weight"], p["bias"]
        if w.shape[2:] != (3, 3) or b.shape != (w.shape[0],):
            raise ConvertError(f"features.{i}: weight {w.shape}, bias {b.shape}: expected a "
                               f"3x3 conv (OC, C, 3, 3) and (OC,)")
        if bn:
            q = feats[i + 1]
            if set(q) != {"weight", "bias", "running_mean", "running_var"} or any(
                    q[k].shape != (w.shape[0],) for k in q):
                raise ConvertError(f"features.{i + 1}: a batch norm needs weight, bias, "
                                   f"running_mean, running_var of shape ({w.shape[0]},)")
            if np.any(q["running_var"] < 0):
                raise ConvertError(f"features.{i + 1}.running_var has negative values")
            scale = q["weight"] / np.sqrt(q["running_var"] + BN_EPS)
            w = w * scale[:, None, None, None]
            b = (b - q["running_mean"]) * scale + q["bias"]
        if n + 1 < len(conv_idx):
            gap = conv_idx[n + 1] - i
            if gap not in (step, step + 1):
                raise ConvertError(f"features.{i} -> features.{conv_idx[n + 1]}: a gap of {gap} "
                                   f"is neither {step} (conv) nor {step + 1} (pool): not a VGG")
            pool = gap == step + 1
        else:
            pool = True              # torchvision's features always end with a max-pool
        convs.append((np.ascontiguousarray(w.transpose(2, 3, 1, 0)), b, pool))   # OIHW -> HWIO

    denses = []
    for j in sorted(cls):
        p = cls[j]
        if set(p) != {"weight", "bias"} or p["weight"].ndim != 2:
            raise ConvertError(f"classifier.{j} has {sorted(p)}: expected a Linear layer")
        denses.append((np.ascontiguousarray(p["weight"].T), p["bias"]))          # (out,in) -> (in,out)
    what = f"torchvision VGG{'_bn' if bn else ''} state dict"
    hf, wf, c = _check_chain(convs, denses, input_size, what)
    denses[0] = (torch_fc1_rows_to_hwc(denses[0][0], hf, wf, c), denses[0][1])
    return Network(convs, denses, "torch", what)


# ---- labels -----------------------------------------------------------------------------------

def load_labels(path, n_classes):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise ConvertError(f"--labels {path}: {e}")
    if isinstance(data, list) and all(isinstance(s, str) for s in data):
        labels = data
    elif isinstance(data, dict):           # Keras: {"0": ["n01440764", "tench"], ...}
        try:
            keys = sorted(data, key=int)
            labels = [data[k][1] if isinstance(data[k], list) else data[k] for k in keys]
        except (ValueError, IndexError, TypeError):
            raise ConvertError(f"--labels {path}: a dict must map \"0\".. to [wnid, name]")
        if keys != [str(i) for i in range(len(keys))] or not all(
                isinstance(s, str) for s in labels):
            raise ConvertError(f"--labels {path}: keys must be \"0\"..\"{len(keys) - 1}\" and "
                               f"names strings")
    else:
        raise ConvertError(f"--labels {path}: expected a JSON list of names or "
                           f"imagenet_class_index.json's dict")
    if len(labels) != n_classes:
        raise ConvertError(f"--labels {path} has {len(labels)} names, the network has "
                           f"{n_classes} classes")
    if any("\0" in s for s in labels):
        raise ConvertError(f"--labels {path}: a name contains a NUL")
    return labels


def imagenet_labels():
    """torchvision's bundled ImageNet-1k category names (no download)."""
    try:
        from torchvision.models import VGG16_Weights
        return list(VGG16_Weights.IMAGENET1K_V1.meta["categories"])
    except Exception:
        from torchvision.models._meta import _IMAGENET_CATEGORIES
        return list(_IMAGENET_CATEGORIES)


# ---- main ---------------------------------------------------------------------------------------

def convert(src, out, dtype="f32", labels_path=None, input_size=224):
    """Convert src into out; returns (sha256 hex, Network, labels)."""
    if not os.path.isfile(src):
        raise ConvertError(f"{src}: no such file")
    if not 1 <= input_size <= 4096:
        raise ConvertError(f"--input-size {input_size}: 1..4096")
    kind = detect(src)
    net = read_keras(src, input_size) if kind == "hdf5" else read_torch(src, input_size)
    n_classes = net.denses[-1][0].shape[1]
    if labels_path:
        labels = load_labels(labels_path, n_classes)
    elif n_classes == 1000:
        labels = imagenet_labels()
    else:
        labels = None
    try:
        sha = gcamfile.write_gcam(out, net.convs, net.denses, (input_size, input_size),
                                  net.preprocess, flatten="hwc", labels=labels, dtype=dtype)
    except gcamfile.GcamFileError as e:
        raise ConvertError(str(e))
    return sha, net, labels


def weight_fidelity(w, dtype):
    """max |w - w as stored| / max |w| of one weight matrix stored as `dtype`."""
    import numpy as np
    if dtype == "int8":
        return gcamfile.int8_fidelity(w)
    w64 = np.asarray(w, dtype=np.float64)
    amax = np.abs(w64).max()
    stored = np.asarray(w, dtype=np.float16).astype(np.float64)
    return float(np.abs(w64 - stored).max() / amax) if amax > 0 else 0.0


def file_sha256(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="convert.py", description="Convert Keras .h5 / .weights.h5 or torchvision .pth "
        "VGG weights into the gcam format.")
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--dtype", choices=["f32", "f16", "int8"], default="f32",
                    help="f16: every tensor as IEEE half; int8: dense weights int8 with one "
                    "scale per output feature, convs f16 (FORMAT.md)")
    ap.add_argument("--labels", help="JSON list of class names, or imagenet_class_index.json")
    ap.add_argument("--input-size", type=int, default=224,
                    help="square input size the network was trained for (default 224)")
    a = ap.parse_args(argv)
    try:
        sha, net, labels = convert(a.src, a.out, a.dtype, a.labels, a.input_size)
    except ConvertError as e:
        print(f"convert.py: error: {e}", file=sys.stderr)
        if os.path.exists(a.out) and os.path.getsize(a.out) == 0:
            os.remove(a.out)
        return 2
    n_params = sum(w.size + b.size for w, b, _ in net.convs) + sum(
        w.size + b.size for w, b in net.denses)
    widths = ",".join(f"{w.shape[3]}{'p' if p else ''}" for w, _, p in net.convs)
    dense = ",".join(str(w.shape[1]) for w, _ in net.denses)
    print(f"source: {net.source} ({os.path.getsize(a.src)} bytes)")
    print(f"network: convs {widths}; dense {dense}; input {a.input_size}x{a.input_size}; "
          f"preprocess {net.preprocess}; labels {'%d' % len(labels) if labels else 'none'}")
    print(f"wrote {a.out}: {os.path.getsize(a.out)} bytes, {n_params} parameters as {a.dtype}")
    if a.dtype != "f32":
        print(f"fidelity ({a.dtype}): max |w - stored w| / max |w| per dense layer: " +
              ", ".join(f"dense{j} {weight_fidelity(w, a.dtype):.2e}"
                        for j, (w, _) in enumerate(net.denses)))
    print(f"header sha256 {sha} (of bytes 64..end, checked by the loader)")
    print(f"file sha256   {file_sha256(a.out)} (sha256sum of the whole file)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
