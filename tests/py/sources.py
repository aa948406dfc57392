"""Source files as the real libraries write them, and the original frameworks' answers.

Keras files are written with h5py in the exact layouts Keras produces (names, attributes,
nesting, dtypes); torchvision files with torch.save of real torchvision modules. The
references compute logits and Grad-CAM from the *source* arrays with the source
framework's semantics, sharing no code with weights/convert.py or weights/gcamfile.py:
  - keras_reference: NHWC tensors, BGR caffe input, HWIO kernels, Flatten over NHWC, in torch
    (autograd for the gradient), float64;
  - torch_reference: the torchvision module itself, float64.
"""

import copy

import cv2
import h5py
import numpy as np
import torch
import torch.nn.functional as F
import torchvision

KERAS_MEAN_BGR = np.array([103.939, 116.779, 123.68])
TORCH_MEAN = np.array([0.485, 0.456, 0.406])
TORCH_STD = np.array([0.229, 0.224, 0.225])

VGG16_BLOCKS = [2, 2, 3, 3, 3]


# ---- a Keras VGG as plain arrays -----------------------------------------------------------

def keras_vgg_arrays(seed, width_div=1, dense=(4096, 4096), classes=1000, input_size=224,
                     blocks=VGG16_BLOCKS):
    """[(name, kind, arrays)] in network order, kind in conv/pool/flatten/dense/input,
    Keras names (block1_conv1, block1_pool, flatten, fc1, fc2, predictions)."""
    rng = np.random.default_rng(seed)
    widths = [64, 128, 256, 512, 512]
    layers = [("input_1", "input", [])]
    cin, size = 3, input_size
    for b, n in enumerate(blocks):
        oc = max(1, widths[b] // width_div)
        for k in range(n):
            w = (rng.standard_normal((3, 3, cin, oc)) * np.sqrt(2.0 / (9 * cin))).astype(np.float32)
            bias = rng.uniform(-0.1, 0.1, oc).astype(np.float32)
            layers.append((f"block{b + 1}_conv{k + 1}", "conv", [w, bias]))
            cin = oc
        layers.append((f"block{b + 1}_pool", "pool", []))
        size //= 2
    layers.append(("flatten", "flatten", []))
    nin = size * size * cin
    names = [f"fc{i + 1}" for i in range(len(dense))] + ["predictions"]
    for name, out in zip(names, list(dense) + [classes]):
        std = np.sqrt(2.0 / nin) if name != "predictions" else 1.0 / (np.sqrt(nin) * 60.0)
        w = (rng.standard_normal((nin, out)) * std).astype(np.float32)
        bias = rng.uniform(-0.05, 0.05, out).astype(np.float32)
        layers.append((name, "dense", [w, bias]))
        nin = out
    return layers


def _names_attr(node, key, names):
    """As Keras's save_attributes_to_hdf5_group: a numpy array of bytes (fixed-length)."""
    node.attrs[key] = np.array([n.encode("utf8") for n in names]) if names else np.array([])


def write_keras_legacy(path, layers):
    """The published vgg16_weights_tf_dim_ordering_tf_kernels.h5 layout: root attribute
    `layer_names` only; one group per layer with `weight_names` (`<layer>_W_1:0`,
    `<layer>_b_1:0`, Keras 1 / TF variable names) and the datasets directly inside."""
    with h5py.File(path, "w") as f:
        _names_attr(f, "layer_names", [n for n, _, _ in layers])
        for name, kind, arrays in layers:
            g = f.create_group(name)
            wn = [f"{name}_W_1:0", f"{name}_b_1:0"] if arrays else []
            _names_attr(g, "weight_names", wn)
            for n, a in zip(wn, arrays):
                g.create_dataset(n, data=a)


def write_keras2(path, layers, keras_version="2.12.0"):
    """What Keras 2's model.save_weights('x.h5') writes: root attrs `backend`,
    `keras_version`, `layer_names`; groups created in name order; `weight_names` like
    `block1_conv1/kernel:0`, so the datasets nest as block1_conv1/block1_conv1/kernel:0;
    plus the (empty) `top_level_model_weights` group of tf.keras >= 2.6."""
    with h5py.File(path, "w") as f:
        _names_attr(f, "layer_names", [n for n, _, _ in layers])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = keras_version.encode("utf8")
        for name, kind, arrays in sorted(layers, key=lambda l: l[0]):
            g = f.create_group(name)
            wn = [f"{name}/kernel:0", f"{name}/bias:0"] if arrays else []
            _names_attr(g, "weight_names", wn)
            for n, a in zip(wn, arrays):
                d = g.create_dataset(n, a.shape, dtype=a.dtype)
                d[()] = a
        t = f.create_group("top_level_model_weights")
        _names_attr(t, "weight_names", [])


KERAS3_CLASS = {"input": "input_layer", "conv": "conv2d", "pool": "max_pooling2d",
                "flatten": "flatten", "dense": "dense"}


def write_keras3(path, layers, top="layers"):
    """Keras 3's model.save_weights('x.weights.h5') (saving_lib.H5IOStore): a `vars` group
    for the model itself, then `layers/<snake_case class name>[_k]/vars/<i>` for every
    layer (groups are named by class and a per-class counter, not by the layer's name);
    `top="_layer_checkpoint_dependencies"` gives tf.keras 2.13-2.15's variant."""
    counters = {}
    with h5py.File(path, "w") as f:
        f.create_group("vars")
        for name, kind, arrays in layers:
            cls = KERAS3_CLASS[kind]
            k = counters.get(cls, 0)
            counters[cls] = k + 1
            gname = cls if k == 0 else f"{cls}_{k}"
            v = f.create_group(f"{top}/{gname}").create_group("vars")
            for i, a in enumerate(arrays):
                v[str(i)] = a


def keras_reference(layers, x_bgr_hwc):
    """Keras semantics on the source arrays: NHWC, 'same' 3x3 convs with HWIO kernels,
    2x2 max-pools, Flatten over (H, W, C), dense x @ W + b, softmax in `predictions`.
    One forward; Reference.cams(classes, mode) then back-propagates per class."""
    x = torch.from_numpy(np.ascontiguousarray(x_bgr_hwc, dtype=np.float64))[None]   # NHWC
    x.requires_grad_(True)          # so that autograd records the graph down to A
    a, last = x, None
    dense = [(n, arr) for n, k, arr in layers if k == "dense"]
    for name, kind, arrays in layers:
        if kind == "conv":
            w = torch.from_numpy(arrays[0].astype(np.float64))       # (3, 3, I, O)
            b = torch.from_numpy(arrays[1].astype(np.float64))
            # NHWC conv as torch's NCHW conv on permuted views
            y = F.conv2d(a.permute(0, 3, 1, 2), w.permute(3, 2, 0, 1), b, padding=1)
            a = F.relu(y).permute(0, 2, 3, 1)
            last = a
        elif kind == "pool":
            a = F.max_pool2d(a.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1)
    v = a.reshape(1, -1)                    # Keras Flatten: row-major over (H, W, C)
    for j, (name, (w, b)) in enumerate(dense):
        v = v @ torch.from_numpy(w.astype(np.float64)) + torch.from_numpy(b.astype(np.float64))
        if j < len(dense) - 1:
            v = F.relu(v)
    return Reference(v[0], last, channels_last=True)


class Reference:
    """A forward pass kept with its graph: .logits, and .cams(classes, mode) ->
    (logits, {class: normalized map}, {class: raw max}) by autograd, A the last conv's
    post-ReLU output."""

    def __init__(self, logits, A, channels_last):
        self.t_logits, self.A, self.channels_last = logits, A, channels_last
        self.t_probs = torch.softmax(logits, dim=0)
        self.logits = logits.detach().numpy().copy()

    def cams(self, classes, mode="logit"):
        cams, raws = {}, {}
        for c in classes:
            score = self.t_logits[c] if mode == "logit" else self.t_probs[c]
            (g,) = torch.autograd.grad(score, self.A, retain_graph=True)
            if self.channels_last:
                alpha = g.mean(dim=(1, 2))[0]                         # (C,)
                raw = F.relu((self.A[0] * alpha).sum(dim=2))
            else:
                alpha = g.mean(dim=(2, 3))[0]
                raw = F.relu((self.A[0] * alpha[:, None, None]).sum(dim=0))
            m = float(raw.max())
            cams[c] = (raw / m).detach().numpy() if m > 0 else np.zeros(tuple(raw.shape))
            raws[c] = m
        return self.logits, cams, raws


def keras_input(img_rgb, size=224):
    r = cv2.resize(img_rgb, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.float64)
    return r[:, :, ::-1] - KERAS_MEAN_BGR


# ---- torchvision ------------------------------------------------------------------------------

def narrow_cfg(arch, div):
    cfg = torchvision.models.vgg.cfgs[{"vgg11": "A", "vgg13": "B", "vgg16": "D",
                                       "vgg19": "E"}[arch]]
    return [v if v == "M" else max(1, v // div) for v in cfg]


def torchvision_vgg(arch="vgg16", bn=False, seed=0, width_div=1, hidden=4096, classes=1000,
                    input_size=224):
    """A real torchvision VGG module (random weights, seeded), with nonzero biases and, for
    _bn, non-trivial running statistics so that the fold is exercised. For a narrow
    network the classifier is resized; for input_size != 224 the adaptive pool is replaced
    by the identity (the converter only accepts networks where it is the identity)."""
    torch.manual_seed(seed)
    if width_div == 1 and hidden == 4096 and input_size == 224:
        model = getattr(torchvision.models, arch + ("_bn" if bn else ""))(
            weights=None, num_classes=classes)
    else:
        features = torchvision.models.vgg.make_layers(narrow_cfg(arch, width_div), bn)
        model = torchvision.models.VGG(features, num_classes=classes, init_weights=True)
        c = [v for v in narrow_cfg(arch, width_div) if v != "M"][-1]
        s = input_size // 32
        model.classifier = torch.nn.Sequential(
            torch.nn.Linear(c * s * s, hidden), torch.nn.ReLU(True), torch.nn.Dropout(),
            torch.nn.Linear(hidden, hidden), torch.nn.ReLU(True), torch.nn.Dropout(),
            torch.nn.Linear(hidden, classes))
        if input_size != 224:
            model.avgpool = torch.nn.Identity()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.bias.uniform_(-0.1, 0.1)
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(3.0)           # logits O(0.1..1) rather than O(0.01)
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def torch_input(img_rgb, size=224):
    r = cv2.resize(img_rgb, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.float64)
    return (r / 255.0 - TORCH_MEAN) / TORCH_STD


def torch_reference(model, x_rgb_hwc):
    """The torchvision module itself (a float64 copy): a Reference whose A is the output of
    the ReLU after the last conv (captured with a forward hook)."""
    m = copy.deepcopy(model).double().eval()
    for mod in m.modules():
        if isinstance(mod, torch.nn.ReLU):
            mod.inplace = False
    relus = [i for i, mod in enumerate(m.features) if isinstance(mod, torch.nn.ReLU)]
    grabbed = {}
    m.features[relus[-1]].register_forward_hook(lambda mod, i, o: grabbed.update(A=o))
    x = torch.from_numpy(np.ascontiguousarray(x_rgb_hwc.transpose(2, 0, 1)))[None].double()
    logits = m(x)[0]
    return Reference(logits, grabbed["A"], channels_last=False)


def save_state_dict(model, path):
    torch.save(model.state_dict(), path)


def sample_image(w=131, h=97, seed=0):
    """A structured RGB test picture (shapes and gradients)."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = (60 + 150 * xx / max(w - 1, 1)).astype(np.uint8)
    img[..., 1] = (200 - 140 * yy / max(h - 1, 1)).astype(np.uint8)
    img[..., 2] = (100 + 80 * np.sin(xx / 7.0 + seed)).astype(np.uint8)
    cv2.circle(img, (w // 3, h // 2), min(w, h) // 4, (240, 30, 40), -1)
    cv2.rectangle(img, (w // 2, h // 6), (w - 8, h // 2), (10, 40, 230), -1)
    cv2.line(img, (0, h - 1), (w - 1, 0), (255, 255, 255), 2)
    return img
