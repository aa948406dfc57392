// decode.test.mjs: decodeImage prefers the browser's own decoder and falls back to the
// library's (issue 9), in Node. Node has no browser decoder, so every call is the library's;
// the browser's is then stood in for by fakes of createImageBitmap and OffscreenCanvas on
// globalThis: one that works (its pixels are returned, the library is not asked), one that
// refuses every file, one without a 2D context, one whose bitmap is over the pixel limit (the
// library then answers, with its own pixels or its typed error). Hostile files (issue 9's
// crafted images and the zlib bomb) reject with GcamImageError whichever path was taken. The
// real browsers: tests/browser/decode.test.mjs.
import { describe, test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createExplainer, GcamError, GcamArgumentError, GcamDisposedError, GcamImageError } from '../../web/index.js';
import { FIXTURES, ROOT, requireBuilds } from './helpers.mjs';

requireBuilds();

const HOSTILE = path.join(ROOT, 'tests/fixtures/hostile');
const PNG = fs.readFileSync(path.join(FIXTURES, 'img0.png'));
const JPEG = fs.readFileSync(path.join(HOSTILE, 'ok_baseline_64x48.jpg'));
const GIF = new TextEncoder().encode('GIF89a\x01\x00\x01\x00\x00\x00\x00;');
/** the crafted images of issue 9 and what the library says of each */
const REFUSED = {
  'finding3_dht_over_256.jpg': /300 codes/,
  'finding3_progressive_undefined_huffman.jpg': /not defined/,
  'finding3_baseline_undefined_huffman.jpg': /not defined/,
  'finding3_png_idat_claims_gb.png': /claims/,
  'finding3_png_idat_too_much.png': /bytes of image data/,
  'finding3_png_zlib_bomb.png': /zlib bomb/,
  'finding5_png_chunk_not_utf8.png': /0xC328A0A1/,
};

/** A stand-in browser decoder on globalThis: `mode` 'works' (every pixel 7, 9, 11, 255 at
 * the given size), 'refuses', 'no-context' or 'huge'; `calls` counts createImageBitmap. */
function fakeBrowser(mode, width = 5, height = 3) {
  const seen = { calls: 0, closed: 0 };
  globalThis.createImageBitmap = async (blob, opts) => {
    seen.calls++;
    assert.ok(blob instanceof Blob, 'a Blob of the file');
    assert.deepEqual(opts, { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
    if (mode === 'refuses') throw new DOMException('The source image could not be decoded.', 'InvalidStateError');
    const [w, h] = mode === 'huge' ? [8193, 8192] : [width, height];
    return { width: w, height: h, close() { seen.closed++; } };
  };
  globalThis.OffscreenCanvas = class {
    constructor(w, h) { this.w = w; this.h = h; }
    getContext(kind) {
      if (mode === 'no-context' || kind !== '2d') return null;
      return {
        drawImage() {},
        getImageData: (x, y, w, h) => {
          const data = new Uint8ClampedArray(w * h * 4);
          for (let i = 0; i < data.length; i += 4) data.set([7, 9, 11, 255], i);
          return { data, width: w, height: h };
        },
      };
    }
  };
  return seen;
}

function noBrowser() {
  delete globalThis.createImageBitmap;
  delete globalThis.OffscreenCanvas;
}

async function rejectsAsImageError(promise, code, message) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof GcamImageError, `a GcamImageError, not ${e && e.name}: ${e && e.message}`);
    assert.ok(e instanceof GcamError);
    assert.equal(e.name, 'GcamImageError');
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

describe('decodeImage in this thread', () => {
  let ex;
  let library; // the library's decode of PNG and JPEG, Node's only decoder
  before(async () => {
    noBrowser();
    ex = await createExplainer({ weights: path.join(FIXTURES, 'model.gcam') });
    library = { png: await ex.decodeImage(PNG), jpeg: await ex.decodeImage(JPEG) };
  });
  after(() => ex.dispose());
  afterEach(noBrowser);

  test('Node has no browser decoder: the library decodes, and says { decoder: "library" } is the same', async () => {
    assert.equal(typeof globalThis.createImageBitmap, 'undefined');
    assert.equal(library.png.width, 203);
    assert.equal(library.png.height, 157);
    assert.equal(library.jpeg.width, 64);
    const again = await ex.decodeImage(PNG, { decoder: 'library' });
    assert.deepEqual(again.data, library.png.data);
    // an ArrayBuffer is the same file
    const ab = PNG.buffer.slice(PNG.byteOffset, PNG.byteOffset + PNG.byteLength);
    assert.deepEqual((await ex.decodeImage(ab)).data, library.png.data);
  });

  test('hostile files, garbage, another format and an image over the limit reject with GcamImageError', async () => {
    for (const [name, message] of Object.entries(REFUSED))
      await rejectsAsImageError(ex.decodeImage(fs.readFileSync(path.join(HOSTILE, name))), 'GCAM_STATUS_IMAGE_DECODE', message);
    await rejectsAsImageError(ex.decodeImage(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])), 'GCAM_STATUS_IMAGE_DECODE');
    await rejectsAsImageError(ex.decodeImage(GIF), 'GCAM_STATUS_UNSUPPORTED_FORMAT', /GIF/);
    // a PNG header declaring 9000 x 9000 pixels: refused before anything is decoded
    const big = Buffer.from(PNG);
    big.writeUInt32BE(9000, 16);
    big.writeUInt32BE(9000, 20);
    await rejectsAsImageError(ex.decodeImage(big), 'GCAM_STATUS_IMAGE_TOO_LARGE', /over the limit/);
  });

  test('a browser decoder that works is preferred for a JPEG or PNG; { decoder: "library" } skips it', async () => {
    const seen = fakeBrowser('works');
    for (const file of [PNG, JPEG]) {
      const img = await ex.decodeImage(file);
      assert.equal(img.width, 5);
      assert.equal(img.height, 3);
      assert.deepEqual([...img.data.subarray(0, 4)], [7, 9, 11, 255]);
    }
    assert.equal(seen.calls, 2);
    assert.equal(seen.closed, 2, 'every bitmap is closed');
    assert.deepEqual((await ex.decodeImage(PNG, { decoder: 'library' })).data, library.png.data);
    assert.equal(seen.calls, 2, 'the library was asked, not the browser');
    // a GIF is never handed to the browser (which would read it): the library refuses it
    await rejectsAsImageError(ex.decodeImage(GIF), 'GCAM_STATUS_UNSUPPORTED_FORMAT');
    assert.equal(seen.calls, 2);
    // nor a file that ends early (Firefox and WebKit decode those to a partial picture): the
    // library refuses every cut of a PNG or a JPEG, and one PNG whose IDAT runs past its end
    for (const file of [PNG, JPEG])
      for (const cut of [file.length - 1, file.length >> 1, 40])
        await rejectsAsImageError(ex.decodeImage(file.subarray(0, cut)), 'GCAM_STATUS_IMAGE_DECODE');
    await rejectsAsImageError(ex.decodeImage(fs.readFileSync(path.join(HOSTILE, 'finding3_png_idat_claims_gb.png'))),
                              'GCAM_STATUS_IMAGE_DECODE', /claims/);
    assert.equal(seen.calls, 2, 'no cut-off file went to the browser');
  });

  for (const mode of ['refuses', 'no-context', 'huge']) {
    test(`a browser decoder that ${mode === 'refuses' ? 'refuses every file' : mode === 'huge' ?
      'gives a bitmap over the pixel limit' : 'has no 2D context'}: the library decodes, with its pixels and errors`, async () => {
      const seen = fakeBrowser(mode);
      const png = await ex.decodeImage(PNG);
      assert.equal(png.width, library.png.width);
      assert.deepEqual(png.data, library.png.data);
      assert.deepEqual((await ex.decodeImage(JPEG)).data, library.jpeg.data);
      for (const [name, message] of Object.entries(REFUSED))
        await rejectsAsImageError(ex.decodeImage(fs.readFileSync(path.join(HOSTILE, name))), 'GCAM_STATUS_IMAGE_DECODE', message);
      // every whole file was offered to the browser (not the one whose IDAT runs past its end)
      assert.equal(seen.calls, 2 + Object.keys(REFUSED).length - 1, `${seen.calls} calls`);
      assert.equal(seen.closed, mode === 'refuses' ? 0 : seen.calls, 'every bitmap is closed');
    });
  }

  test('arguments and options are checked first (own properties only)', async () => {
    const seen = fakeBrowser('works');
    await assert.rejects(ex.decodeImage('not bytes'), GcamArgumentError);
    await assert.rejects(ex.decodeImage(PNG, { decoder: 'browser' }), GcamArgumentError);
    await assert.rejects(ex.decodeImage(PNG, { decodr: 'library' }), /unknown option 'decodr'/);
    await assert.rejects(ex.decodeImage(PNG, 'library'), GcamArgumentError);
    assert.equal(seen.calls, 0);
    // a prototype's `decoder` is not an option: the default ('auto') applies
    const img = await ex.decodeImage(PNG, Object.create({ decoder: 'library' }));
    assert.equal(img.width, 5);
  });
});

test('decodeImage after dispose: GcamDisposedError, the browser decoder not asked', async () => {
  const ex = await createExplainer({ weights: path.join(FIXTURES, 'model.gcam') });
  ex.dispose();
  const seen = fakeBrowser('works');
  try {
    await assert.rejects(ex.decodeImage(PNG), GcamDisposedError);
    assert.equal(seen.calls, 0);
  } finally {
    noBrowser();
  }
});
