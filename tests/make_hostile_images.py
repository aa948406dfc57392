"""The crafted images of issue 9 (finding 3 and the CLI's chunk-name finding), written into
tests/fixtures/hostile/ by tests/make_hostile_files.py. Each starts from a small valid image
made here (numpy pattern, PIL's encoders) and breaks one thing; the valid ones are kept too,
as controls that must still decode exactly as plain stb_image decodes them."""
import io
import os
import struct
import zlib

import numpy as np
from PIL import Image


def _pattern(w, h, channels=3):
    y, x = np.mgrid[0:h, 0:w]
    planes = [(x * 7 + y * 3) % 256, (x * y) % 256, (255 - x * 5) % 256, 200 + 0 * x]
    return np.stack(planes[:channels], axis=-1).astype(np.uint8)


def _jpeg(img, **kw):
    b = io.BytesIO()
    Image.fromarray(img).save(b, "JPEG", quality=85, **kw)
    return b.getvalue()


def _png(img):
    b = io.BytesIO()
    Image.fromarray(img).save(b, "PNG")
    return b.getvalue()


def _segments(jpg):
    """[(marker, start, end)] of a JPEG's marker segments, scans skipped."""
    out, i = [], 2
    while i < len(jpg):
        assert jpg[i] == 0xFF
        m = jpg[i + 1]
        if m == 0xD9:
            break
        ln = struct.unpack(">H", jpg[i + 2:i + 4])[0]
        out.append((m, i, i + 2 + ln))
        i += 2 + ln
        if m == 0xDA:
            while not (jpg[i] == 0xFF and jpg[i + 1] not in (0x00,) and
                       not 0xD0 <= jpg[i + 1] <= 0xD7):
                i += 1
    return out


def jpeg_dht_over_256(base):
    """stb #1289/#1291: a DHT whose 16 counts sum to 300 (> 256): stb's build_huffman
    writes past its 257-entry size table (UBSan at stb_image.h:1990)."""
    counts = [0] * 14 + [45, 255]
    seg = bytes([0x00]) + bytes(counts) + bytes(range(256)) + bytes(range(44))
    dht = b"\xff\xc4" + struct.pack(">H", 2 + len(seg)) + seg
    m, start, _ = next(s for s in _segments(base) if s[0] == 0xC4)
    return base[:start] + dht + base[start:]


def jpeg_scan_undefined_table(base, progressive):
    """stb #1535: a scan that decodes with a Huffman table no DHT defined (id 3). In a
    progressive file, the first AC scan (Ss > 0); else the first scan's DC table. stb reads
    the table's uninitialized memory (MSan at stb_image.h:2282)."""
    b = bytearray(base)
    for m, start, end in _segments(base):
        if m != 0xDA:
            continue
        ns = b[start + 4]
        ss = b[start + 5 + 2 * ns]
        if progressive and ss == 0:
            continue
        sel = start + 6  # Td/Ta of the scan's first component
        b[sel] = (b[sel] & 0x0F) | 0x30 if not progressive else (b[sel] & 0xF0) | 0x03
        return bytes(b)
    raise AssertionError("no scan to break")


def _chunk(ctype, data):
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data))


def _png_chunks(png):
    out, i = [], 8
    while i < len(png):
        ln = struct.unpack(">I", png[i:i + 4])[0]
        out.append((png[i + 4:i + 8], png[i + 8:i + 8 + ln]))
        i += 12 + ln
    return out


def png_idat_claims_gb(base_noise):
    """Finding 3c: a 25 KB PNG whose IDAT length field says 0x42000000 (1.1 GB): stb grows
    its buffer to that (2 GB) before reading a byte of it."""
    out, i = bytearray(base_noise[:8]), 8
    for ctype, data in _png_chunks(base_noise):
        c = _chunk(ctype, data)
        if ctype == b"IDAT":
            c = struct.pack(">I", 0x42000000) + c[4:]
        out += c
    return bytes(out)


def png_idat_too_much(w=4, h=4):
    """IDAT holding 4 KB for a 4x4 image (52 bytes inflated): more than any deflate of it."""
    raw = b"".join(b"\0" + bytes(3 * w) for _ in range(h))
    idat = zlib.compress(raw) + bytes(4 << 10)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat)
            + _chunk(b"IEND", b""))


def png_zlib_bomb(w=128, h=128, inflated=32 << 20):
    """A zlib bomb: a 128x128 gray PNG (16,512 bytes inflated) whose 33 KB IDAT, within the
    IDAT bound of twice the image, inflates to 32 MiB of zeros (deflate's best ratio is about
    1000:1). Its rows are well-formed, the extra output simply never ends: stb grew its output
    buffer by doubling to hold all of it (64 MiB) before the image's end was checked. The
    small one (16x16, 1 MiB) is the fuzzers' seed."""
    idat = zlib.compress(bytes(inflated), 9)
    assert len(idat) <= 2 * h * (w + 1) + 1024, len(idat)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat)
            + _chunk(b"IEND", b""))


def png_chunk_not_utf8(base):
    """A critical chunk whose type is the bytes C3 28 A0 A1 (not UTF-8, not letters): stb
    copies them raw into its failure reason ("XXXX PNG chunk not known")."""
    chunks = _png_chunks(base)
    out = bytearray(base[:8])
    for k, (ctype, data) in enumerate(chunks):
        out += _chunk(ctype, data)
        if ctype == b"IHDR":
            out += _chunk(bytes([0xC3, 0x28, 0xA0, 0xA1]), b"hello")
    return bytes(out)


def png_adam7(img):
    """An interlaced (Adam7) 8-bit RGB PNG, written by hand (PIL writes none)."""
    h, w, _ = img.shape
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
              (1, 0, 2, 2), (0, 1, 1, 2)]
    raw = b""
    for x0, y0, dx, dy in passes:
        sub = img[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\0" + row.tobytes() for row in sub)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw))
            + _chunk(b"IEND", b""))


def png_variants():
    """[(name, bytes)]: the PNG colour types and depths, as controls for the validator."""
    rgb = _pattern(23, 17)
    out = [("ok_adam7_23x17.png", png_adam7(rgb))]
    modes = {"gray8": Image.fromarray(rgb[..., 0]),
             "gray1": Image.fromarray(rgb[..., 0]).convert("1"),
             "gray16": Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)).convert("I;16"),
             "gray_alpha": Image.fromarray(rgb[..., :2].copy(), "LA"),
             "palette": Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=16),
             "rgba": Image.fromarray(_pattern(23, 17, 4))}
    pal_trns = Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=5)
    for name, im in modes.items():
        b = io.BytesIO()
        im.save(b, "PNG")
        out.append((f"ok_{name}_23x17.png", b.getvalue()))
    b = io.BytesIO()
    pal_trns.save(b, "PNG", transparency=2, bits=4)
    out.append(("ok_palette4_trns_23x17.png", b.getvalue()))
    return out


def main(out_dir):
    def put(name, data):
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)

    rgb = _pattern(64, 48)
    baseline = _jpeg(rgb)
    progressive = _jpeg(rgb, progressive=True)
    put("ok_baseline_64x48.jpg", baseline)
    put("ok_progressive_64x48.jpg", progressive)
    put("ok_rgb_64x48.png", _png(rgb))
    for name, data in png_variants():
        put(name, data)
    put("ok_gray_progressive_23x17.jpg", _jpeg(_pattern(23, 17)[..., 0], progressive=True))
    # restart markers (RSTn inside the scan, a DRI segment): Pillow writes none, OpenCV does
    import cv2
    ok, rst = cv2.imencode(".jpg", _pattern(23, 17)[..., ::-1].copy(),
                           [cv2.IMWRITE_JPEG_RST_INTERVAL, 1, cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    put("ok_restart_23x17.jpg", rst.tobytes())
    ok, rst = cv2.imencode(".jpg", _pattern(23, 17)[..., ::-1].copy(),
                           [cv2.IMWRITE_JPEG_RST_INTERVAL, 2, cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert ok
    put("ok_restart_progressive_23x17.jpg", rst.tobytes())
    put("finding3_dht_over_256.jpg", jpeg_dht_over_256(baseline))
    put("finding3_progressive_undefined_huffman.jpg",
        jpeg_scan_undefined_table(progressive, progressive=True))
    put("finding3_baseline_undefined_huffman.jpg",
        jpeg_scan_undefined_table(baseline, progressive=False))
    noise = np.random.default_rng(3).integers(0, 256, (90, 90, 3), dtype=np.uint8)
    put("finding3_png_idat_claims_gb.png", png_idat_claims_gb(_png(noise)))
    put("finding3_png_idat_too_much.png", png_idat_too_much())
    put("finding3_png_zlib_bomb.png", png_zlib_bomb())
    put("finding3_png_zlib_bomb_small.png", png_zlib_bomb(16, 16, 1 << 20))
    put("finding5_png_chunk_not_utf8.png", png_chunk_not_utf8(_png(_pattern(8, 8))))
