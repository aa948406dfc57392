#!/usr/bin/python3
"""Write tests/fixtures/vgg_small/: small seeded VGG16-topology models, two odd-sized images,
and what torch (autograd Grad-CAM, float64) and OpenCV (resize, JET, blend) make of them.
See tests/fixtures/vgg_small/README.md for the files and the manifest's lines.

    /usr/bin/python3 tests/oracle/make_fixtures.py [OUT_DIR]

Deterministic: same script, same files (the SHA-256 of the models is in the manifest).
"""

import os
import sys

import cv2
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "weights"))
sys.path.insert(0, HERE)
import gcamfile      # noqa: E402
import make_random   # noqa: E402
import reference     # noqa: E402

MODES = ("logit", "softmax")
PNG_OPTS = [cv2.IMWRITE_PNG_COMPRESSION, 9]


def draw_image(w, h, variant):
    """A synthetic picture with edges, flat areas and gradients (not noise)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3), np.float64)
    img[..., 0] = 40 + 150 * xx / max(w - 1, 1)
    img[..., 1] = 200 - 120 * yy / max(h - 1, 1)
    img[..., 2] = 90 + 60 * np.sin(xx / 9.0 + variant) * np.cos(yy / 13.0)
    img = np.clip(img, 0, 255).astype(np.uint8)
    img = np.ascontiguousarray(img)
    if variant == 0:
        cv2.circle(img, (w // 3, h // 2), min(w, h) // 4, (230, 40, 30), -1, cv2.LINE_AA)
        cv2.rectangle(img, (w // 2, h // 5), (w - 15, h // 2), (20, 30, 220), -1)
        cv2.line(img, (0, h - 1), (w - 1, h // 3), (255, 255, 255), 3, cv2.LINE_AA)
        cv2.ellipse(img, (3 * w // 4, 3 * h // 4), (w // 6, h // 10), 30, 0, 360,
                    (250, 220, 0), -1, cv2.LINE_AA)
    else:
        for k in range(6):
            y = 20 + k * (h - 40) // 5
            cv2.rectangle(img, (5 + 7 * k, y - 12), (w - 10 - 5 * k, y + 12),
                          (30 * k, 255 - 35 * k, 120), -1)
        cv2.circle(img, (w // 2, h // 3), w // 3, (10, 10, 10), 4, cv2.LINE_AA)
        cv2.putText(img, "G", (w // 4, 2 * h // 3), cv2.FONT_HERSHEY_SIMPLEX, 2.0,
                    (255, 250, 240), 5, cv2.LINE_AA)
    return img


def save_f32(path, arr):
    np.ascontiguousarray(arr, dtype="<f4").tofile(path)


def pick_classes(r):
    """top-1, then a middle and a low-ranked class (the 4th best and the worst, or the
    nearest ranks whose maps are non-zero in both modes, so the maps say something)."""
    order = [int(c) for c in np.argsort(-r.logits, kind="stable")]
    ok = [c for c in order[1:] if all(r.maps[(m, c)].raw_max > 0 for m in MODES)]
    if len(ok) < 2:
        raise SystemExit("fewer than 2 classes with non-zero maps: pick another seed")
    mid = min(ok, key=lambda c: abs(order.index(c) - 3))
    low = [c for c in ok if c != mid][-1]
    return [order[0], mid, low]


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for f in os.listdir(out_dir):
        if f != "README.md":
            os.remove(os.path.join(out_dir, f))
    lines = ["format 1"]

    # m0: Keras-style reduced VGG16 (caffe, HWC flatten, f32, labels)
    # m1: torchvision-style (torch preprocessing, dense0 rows stored CHW, f16 storage)
    # m2: int8 storage (dense int8 + per-output scales, convs f16), CHW like m1
    specs = [
        ("m0", "model.gcam", dict(seed=2026, preprocess="caffe"), "hwc", "f32"),
        ("m1", "model_torch.gcam", dict(seed=2027, preprocess="torch"), "chw", "f16"),
        ("m2", "model_int8.gcam", dict(seed=2028, preprocess="torch"), "chw", "int8"),
    ]
    models = []
    for tag, fname, kw, flatten, dtype in specs:
        convs, denses = make_random.random_vgg("vgg16", width_div=16, input_size=224,
                                               dense=(64, 64), classes=10, **kw)
        if flatten == "chw":
            hf, wf, c = gcamfile.final_shape((224, 224), convs)
            denses[0] = (gcamfile.hwc_rows_to_chw(denses[0][0], hf, wf, c), denses[0][1])
        path = os.path.join(out_dir, fname)
        gcamfile.write_gcam(path, convs, denses, (224, 224), kw["preprocess"],
                            flatten=flatten, labels=[f"class{i}" for i in range(10)],
                            dtype=dtype)
        m = gcamfile.read_gcam(path)           # weights as the library will see them
        ch, cw, cc = m.cam_hwc
        lines.append(f"model {tag} {fname} {m.preprocess} {m.flatten} {m.dtype} "
                     f"{m.input_hw[0]} {m.input_hw[1]} {m.n_classes} {ch} {cw} {cc} {m.sha256}")
        models.append((tag, m))

    images = [("img0", draw_image(203, 157, 0)), ("img1", draw_image(97, 311, 1))]
    for iid, img in images:
        cv2.imwrite(os.path.join(out_dir, f"{iid}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                    PNG_OPTS)
        back = reference.load_rgb(os.path.join(out_dir, f"{iid}.png"))
        assert np.array_equal(back, img)
        lines.append(f"image {iid} {iid}.png {img.shape[1]} {img.shape[0]}")

    report = []
    for tag, m in models:
        net64 = reference.TorchVGG(m, torch.float64)
        net32 = reference.TorchVGG(m, torch.float32)
        for iid, img in images:
            p = f"{tag}_{iid}_"
            x = reference.preprocess(img, m)
            x32 = x.astype(np.float32)
            every = reference.gradcam(m, x32.astype(np.float64), range(m.n_classes), MODES,
                                      net=net64)
            classes = pick_classes(every)
            r64 = reference.gradcam(m, x32.astype(np.float64), classes, MODES, net=net64)
            r32 = reference.gradcam(m, x32, classes, MODES, torch.float32, net=net32)

            full = tag == "m0"      # m1 gets logits and maps only, to keep the size down
            if full:
                save_f32(os.path.join(out_dir, p + "input.f32"), x32)
                lines.append(f"input {tag} {iid} {p}input.f32")
            save_f32(os.path.join(out_dir, p + "logits.f32"), r64.logits)
            save_f32(os.path.join(out_dir, p + "probs.f32"), r64.probs)
            lines.append(f"logits {tag} {iid} {p}logits.f32")
            lines.append(f"probs {tag} {iid} {p}probs.f32")
            top5 = np.argsort(-r64.logits, kind="stable")[:5]
            lines.append(f"top5 {tag} {iid} " + " ".join(str(int(c)) for c in top5))
            lines.append(f"classes {tag} {iid} {len(classes)} " + " ".join(map(str, classes)))

            lrel = np.max(np.abs(r32.logits - r64.logits)) / np.max(np.abs(r64.logits))
            worst_cam = 0.0
            for mode in MODES:
                for c in classes:
                    cr = r64.maps[(mode, c)]
                    save_f32(os.path.join(out_dir, f"{p}cam_raw_{mode}_{c}.f32"), cr.cam_raw)
                    save_f32(os.path.join(out_dir, f"{p}cam_{mode}_{c}.f32"), cr.cam)
                    grad = overlay = "-"
                    if full:
                        grad = f"{p}grad_{mode}_{c}.f32"
                        save_f32(os.path.join(out_dir, grad), cr.grad)
                        overlay = f"{p}overlay_{mode}_{c}.png"
                        ov = reference.overlay(img, cr.cam.astype(np.float32))
                        cv2.imwrite(os.path.join(out_dir, overlay),
                                    cv2.cvtColor(ov, cv2.COLOR_RGB2BGR), PNG_OPTS)
                    lines.append(f"explain {tag} {iid} {mode} {c} {cr.raw_max:.9g} {grad} "
                                 f"{p}cam_raw_{mode}_{c}.f32 {p}cam_{mode}_{c}.f32 {overlay}")
                    worst_cam = max(worst_cam, float(np.max(np.abs(
                        r32.maps[(mode, c)].cam - cr.cam))))
            lines.append(f"f32diff {tag} {iid} {lrel:.3g} {worst_cam:.3g}")
            report.append(f"{tag} {iid}: classes {classes}, top5 {list(map(int, top5))}, "
                          f"logits {np.round(r64.logits, 3).tolist()}, torch f32 vs f64: "
                          f"logits max rel {lrel:.2e}, cam max abs {worst_cam:.2e}")

    with open(os.path.join(out_dir, "manifest.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    total = sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir))
    for r in report:
        print(r)
    print(f"wrote {len(os.listdir(out_dir))} files, {total} bytes, to {out_dir}")


if __name__ == "__main__":
    torch.set_num_threads(2)
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "fixtures",
                                                            "vgg_small"))
