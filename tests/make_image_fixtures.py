#!/usr/bin/python3
"""Write the OpenCV oracle fixtures for tests/test_image.c into tests/fixtures/image/.

Run from anywhere with Debian's python3 (OpenCV 4.6, numpy):
    /usr/bin/python3 tests/make_image_fixtures.py

Inputs that are cheap to regenerate are not stored: u8 images and float maps come from the
xorshift32 generator below, which tests/test_image.c repeats. The outputs of cv2 are stored as
raw little-endian arrays (.u8, .f32) or, when big, as lossless PNGs whose channels are the
array's channels in order (so an RGBA decoder returns them unchanged). The manifest
(cases.txt) lists every case with its sizes, one per line, for the C test to read.

Mind the machine: cv2.addWeighted is dispatched to AVX2 code and then rounds a fused
multiply-add (the C code reproduces that). On a CPU without FMA, 157 of the 65536 blend pairs
come out differently, so regenerate the fixtures on an x86-64 CPU with AVX2/FMA.
"""
import os
import struct
import zlib

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "image")


def xorshift_states(seed, n):
    """n successive xorshift32 states (13, 17, 5), as test_image.c and tests/test.h step them."""
    s = seed & 0xFFFFFFFF
    out = np.empty(n, dtype=np.uint64)
    for i in range(n):
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        out[i] = s
    return out


def xorshift_bytes(seed, n):
    """n bytes: the top byte of each state, as test_image.c does."""
    return (xorshift_states(seed, n) >> np.uint64(24)).astype(np.uint8)


def xorshift_floats(seed, n):
    """n floats in [0, 1): (state >> 8) / 2^24, as test_fill_uniform in tests/test.h."""
    s = xorshift_states(seed, n) >> np.uint64(8)
    return (s.astype(np.float64) * (1.0 / 16777216.0)).astype(np.float32)


def test_image(seed, w, h, ch):
    """Noise with flat 0 and 255 patches, so that ringing saturates at both ends."""
    img = xorshift_bytes(seed, w * h * ch).reshape(h, w, ch)
    return img


def save_u8(name, arr, png_ok=True):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    if png_ok and arr.size > 16384 and (arr.ndim == 2 or arr.shape[2] in (1, 3, 4)):
        if arr.ndim == 2 or arr.shape[2] == 1:
            order = [0]
            arr = arr.reshape(arr.shape[0], arr.shape[1], 1)
        else:
            order = [2, 1, 0] if arr.shape[2] == 3 else [2, 1, 0, 3]
        path = name + ".png"
        ok = cv2.imwrite(os.path.join(OUT, path), arr[:, :, order],
                         [cv2.IMWRITE_PNG_COMPRESSION, 9])
        assert ok
    else:
        path = name + ".u8"
        arr.tofile(os.path.join(OUT, path))
    return path


def save_f32(name, arr):
    path = name + ".f32"
    np.ascontiguousarray(arr, dtype="<f4").tofile(os.path.join(OUT, path))
    return path


def png_with_size(w, h):
    """A PNG whose header claims w x h (a 1-pixel image with a patched IHDR, CRC fixed)."""
    ok, buf = cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))
    b = bytearray(buf.tobytes())
    # signature (8) + length (4) + "IHDR" (4): width at 16, height at 20, CRC at 29
    struct.pack_into(">II", b, 16, w, h)
    struct.pack_into(">I", b, 29, zlib.crc32(bytes(b[12:29])) & 0xFFFFFFFF)
    return bytes(b)


def jpeg_with_size(jpg, w, h):
    """The JPEG with its frame header (SOF0) claiming w x h."""
    b = bytearray(jpg)
    i = b.index(b"\xff\xc0")
    struct.pack_into(">HH", b, i + 5, h, w)
    return bytes(b)


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    lines = []

    # ---- bicubic u8: cv2.resize(INTER_CUBIC); the C test regenerates the source ----------
    # name, src w, src h, channels, dst w, dst h, seed
    cubic = [
        ("cubic_1x1_224", 1, 1, 3, 224, 224, 11),
        ("cubic_1x5000_224", 1, 5000, 3, 224, 224, 12),
        ("cubic_4000x3_224", 4000, 3, 3, 224, 224, 13),
        ("cubic_640x480_224_rgba", 640, 480, 4, 224, 224, 14),
        ("cubic_50x37_150x111_rgba", 50, 37, 4, 150, 111, 15),
        ("cubic_300x120_97x150", 300, 120, 3, 97, 150, 16),
        ("cubic_97x61_203x31_gray", 97, 61, 1, 203, 31, 17),
        ("cubic_13x7_5x3_2ch", 13, 7, 2, 5, 3, 18),
        ("cubic_7x5_1x1", 7, 5, 3, 1, 1, 19),
        ("cubic_28x28_112x112_x4", 28, 28, 3, 112, 112, 20),
        ("cubic_90x60_45x30_half", 90, 60, 3, 45, 30, 21),
        ("cubic_64x64_64x64_same", 64, 64, 3, 64, 64, 22),
        ("cubic_33x17_17x33", 33, 17, 4, 17, 33, 23),
    ]
    for name, sw, sh, ch, dw, dh, seed in cubic:
        src = test_image(seed, sw, sh, ch)
        ref = cv2.resize(src if ch > 1 else src[:, :, 0], (dw, dh),
                         interpolation=cv2.INTER_CUBIC).reshape(dh, dw, ch)
        path = save_u8(name, ref)
        lines.append(f"cubic {path} {sw} {sh} {ch} {dw} {dh} {seed}")

    # ---- bilinear f32: cv2.resize default INTER_LINEAR on a float32 map ----------------------
    linear = [
        ("linear_14x14_201x137", 14, 14, 201, 137, 31),
        ("linear_14x14_1x1", 14, 14, 1, 1, 32),
        ("linear_14x14_3000x2", 14, 14, 3000, 2, 33),
        ("linear_7x7_33x19", 7, 7, 33, 19, 34),
        ("linear_7x7_3x3", 7, 7, 3, 3, 35),
        ("linear_14x14_7x7_half", 14, 14, 7, 7, 36),
        ("linear_30x22_15x11_half", 30, 22, 15, 11, 40),
        ("linear_1x1_5x4", 1, 1, 5, 4, 37),
        ("linear_14x1_9x9", 14, 1, 9, 9, 38),
        ("linear_14x14_14x14_same", 14, 14, 14, 14, 39),
    ]
    for name, sw, sh, dw, dh, seed in linear:
        src = xorshift_floats(seed, sw * sh).reshape(sh, sw)
        ref = cv2.resize(src, (dw, dh)).reshape(dh, dw)
        path = save_f32(name, ref)
        lines.append(f"linear {path} {sw} {sh} {dw} {dh} {seed}")

    # ---- JET: all 256 levels, converted to RGB -----------------------------------------------
    jet = cv2.applyColorMap(np.arange(256, dtype=np.uint8).reshape(256, 1), cv2.COLORMAP_JET)
    lines.append("jet " + save_u8("jet_rgb", jet.reshape(256, 3)[:, ::-1]))

    # ---- heat -> u8 as np.uint8(255 * heat), float32 --------------------------------------------
    vals = [np.float32(k) / np.float32(255) for k in range(256)]
    vals += [np.nextafter(v, np.float32(0)) for v in vals] + [np.nextafter(v, np.float32(2)) for v in vals]
    vals += list(xorshift_floats(41, 2000)) + [np.float32(1.0), np.float32(0.0)]
    heat = np.clip(np.array(vals, dtype=np.float32), 0, 1)
    u8 = np.uint8(255 * heat)
    lines.append(f"heat {save_f32('heat_in', heat)} {save_u8('heat_u8', u8)} {heat.size}")

    # ---- blend: every (colored, image) pair through cv2.addWeighted(a, 0.4, b, 0.9, 0) -----------
    a = np.repeat(np.arange(256, dtype=np.uint8), 256).reshape(256, 256)
    b = np.tile(np.arange(256, dtype=np.uint8), 256).reshape(256, 256)
    lines.append("blend " + save_u8("blend_04_09", cv2.addWeighted(a, 0.4, b, 0.9, 0)))

    # ---- the whole overlay, as the Keras recipe writes it with OpenCV -----------------------------
    for name, w, h, mw, mh, seed in [("overlay_123x77", 123, 77, 14, 14, 51),
                                     ("overlay_31x200", 31, 200, 7, 7, 52)]:
        img = test_image(seed, w, h, 4)
        cam = xorshift_floats(seed + 100, mw * mh).reshape(mh, mw)
        cam[0, 0] = 0.0
        cam = np.maximum(cam - np.float32(0.2), 0)  # a ReLU'd map with zeros
        cam = (cam / cam.max()).astype(np.float32)  # divided by its max, as Grad-CAM does
        save_f32(name + "_map", cam)
        heat = cv2.resize(cam, (w, h))
        colored = cv2.applyColorMap(np.uint8(255 * heat), cv2.COLORMAP_JET)[:, :, ::-1]
        blended = cv2.addWeighted(np.ascontiguousarray(colored), 0.4,
                                  np.ascontiguousarray(img[:, :, :3]), 0.9, 0)
        out = np.dstack([blended, img[:, :, 3]])
        heatmap = np.dstack([colored, np.full((h, w), 255, np.uint8)])
        p1 = save_u8(name, out)
        p2 = save_u8(name + "_heat", heatmap)
        p3 = save_u8(name + "_gray", np.uint8(255 * heat))
        lines.append(f"overlay {p1} {p2} {p3} {name}_map.f32 {w} {h} {mw} {mh} {seed}")

    # ---- preprocessing, numpy float32 ------------------------------------------------------------
    img = test_image(61, 17, 13, 4)
    caffe_mean = np.array([103.939, 116.779, 123.68], dtype=np.float32)  # BGR
    x = img[:, :, :3].astype(np.float32)[:, :, ::-1] - caffe_mean
    lines.append(f"pre_caffe {save_f32('pre_caffe', x)} 17 13 4 61")
    t_mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
    t_std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
    x = (img[:, :, :3].astype(np.float32) / np.float32(255) - t_mean) / t_std
    lines.append(f"pre_torch {save_f32('pre_torch', x)} 17 13 4 61")

    # ---- decode: files and what cv2.imdecode makes of them (RGB or RGBA) --------------------------
    yy, xx = np.mgrid[0:48, 0:64]
    smooth = np.dstack([(xx * 4) % 256, (yy * 5) % 256, ((xx + yy) * 2) % 256]).astype(np.uint8)
    smooth = cv2.GaussianBlur(smooth, (5, 5), 1.5)
    noisy = test_image(71, 37, 23, 3)
    alpha = test_image(72, 19, 11, 4)
    gray = test_image(73, 16, 9, 1)[:, :, 0]

    def pil_jpeg_444(rgb, quality):
        # cv2 4.6 cannot choose the chroma subsampling; Pillow (also libjpeg) can
        import io
        from PIL import Image
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=quality, subsampling=0)
        return buf.getvalue()

    def write(name, data):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)

    def encoded(ext, arr, params=()):
        ok, buf = cv2.imencode(ext, arr, list(params))
        assert ok, ext
        return buf.tobytes()

    decode_cases = [
        ("rgb_37x23.png", encoded(".png", noisy[:, :, ::-1]), 4, cv2.IMREAD_COLOR),
        ("rgba_19x11.png", encoded(".png", alpha[:, :, [2, 1, 0, 3]]), 4, cv2.IMREAD_UNCHANGED),
        ("gray_16x9.png", encoded(".png", gray), 1, cv2.IMREAD_GRAYSCALE),
        ("q90_420_64x48.jpg", encoded(".jpg", smooth[:, :, ::-1],
                                      [cv2.IMWRITE_JPEG_QUALITY, 90]), 4, cv2.IMREAD_COLOR),
        ("q95_444_64x48.jpg", pil_jpeg_444(smooth, 95), 4, cv2.IMREAD_COLOR),
        ("gray_q90_37x23.jpg", encoded(".jpg", noisy[:, :, 0], [cv2.IMWRITE_JPEG_QUALITY, 90]),
         4, cv2.IMREAD_COLOR),
        ("noise_q75_37x23.jpg", encoded(".jpg", noisy[:, :, ::-1],
                                        [cv2.IMWRITE_JPEG_QUALITY, 75]), 4, cv2.IMREAD_COLOR),
        ("one_1x1.png", encoded(".png", noisy[:1, :1, ::-1]), 4, cv2.IMREAD_COLOR),
        ("tall_1x5000.png", encoded(".png", test_image(74, 1, 5000, 3)), 4, cv2.IMREAD_COLOR),
    ]
    for name, data, _, flag in decode_cases:
        write(name, data)
        ref = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
        if ref.ndim == 2:  # gray: RGB all equal, alpha 255
            ref = np.dstack([ref, ref, ref])
        if ref.shape[2] == 3:
            ref = np.dstack([ref[:, :, ::-1], np.full(ref.shape[:2], 255, np.uint8)])
        else:
            ref = ref[:, :, [2, 1, 0, 3]]
        h, w = ref.shape[:2]
        kind = "jpeg" if name.endswith(".jpg") else "png"
        ref_path = name.rsplit(".", 1)[0] + "_ref"
        ref_path = save_u8(ref_path, ref, png_ok=False)  # not through the decoder under test
        lines.append(f"decode_{kind} {name} {ref_path} {w} {h}")

    png = encoded(".png", noisy)
    jpg = encoded(".jpg", smooth)
    refused = [
        ("gif89a.gif", b"GIF89a\x01\x00\x01\x00\x80\x00\x00", "unsupported"),
        ("gif87a.gif", b"GIF87a\x01\x00\x01\x00\x00\x00\x00", "unsupported"),
        ("psd.psd", b"8BPS\x00\x01\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x01", "unsupported"),
        ("bmp.bmp", encoded(".bmp", noisy[:4, :4]), "unsupported"),
        ("tiff.tif", encoded(".tiff", noisy[:4, :4]), "unsupported"),
        ("webp.webp", b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00", "unsupported"),
        ("hdr.hdr", b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 1 +X 1\n\x80\x80\x80\x80", "unsupported"),
        ("png_truncated.png", png[: len(png) // 2], "decode"),
        ("png_header_only.png", png[:33], "decode"),
        ("jpeg_truncated.jpg", jpg[: len(jpg) // 2], "decode"),
        ("jpeg_header_only.jpg", jpg[:200], "decode"),
        ("garbage.bin", xorshift_bytes(81, 300).tobytes(), "decode"),
        ("png_signature_only.png", png[:8], "decode"),
        ("huge_100000x100000.png", png_with_size(100000, 100000), "too_large"),
        ("big_8193x8192.png", png_with_size(8193, 8192), "too_large"),
        ("huge_65535x65535.jpg", jpeg_with_size(jpg, 65535, 65535), "too_large"),
        ("big_8192x8193.jpg", jpeg_with_size(jpg, 8192, 8193), "too_large"),
    ]
    for name, data, expect in refused:
        write(name, data)
        lines.append(f"refuse {name} {expect}")

    with open(os.path.join(OUT, "cases.txt"), "w") as f:
        f.write("# written by tests/make_image_fixtures.py (OpenCV %s); read by tests/test_image.c\n"
                % cv2.__version__)
        f.write("\n".join(lines) + "\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"{len(lines)} cases, {len(os.listdir(OUT))} files, {total} bytes in {OUT}")


if __name__ == "__main__":
    main()
