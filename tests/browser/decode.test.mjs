// decode.test.mjs: decodeImage in real browsers (issue 9) prefers the browser's own decoder
// (createImageBitmap and a canvas) and falls back to the library's. In Chromium, Firefox and
// WebKit, with the explainer in its Web Worker and in the page: a PNG decodes to exactly the
// library's pixels and a JPEG to within a few levels (each browser has its own IDCT and chroma
// upsampling), through the browser's decoder (createImageBitmap is seen to succeed); a file
// cut in half is never handed to it (Firefox and WebKit decode those to a partial picture)
// and is the library's GcamImageError; the
// crafted images of issue 9 either decode in the browser (its decoders are fuzzed and
// sandboxed: it may read what the library's validator refuses) or reject with a GcamImageError
// carrying the library's status and message, and the ones no decoder reads do reject; a GIF
// (which browsers read) is the library's GCAM_STATUS_UNSUPPORTED_FORMAT. Node's side of this
// (fakes of a browser that works, refuses, or has no canvas): tests/js/decode.test.mjs.
import assert from 'node:assert/strict';
import { forEachEngine } from './harness.mjs';
import { requireBuilds } from '../js/helpers.mjs';

requireBuilds();

const FILES = {
  png: '/tests/fixtures/vgg_small/img0.png',
  pngRgba: '/tests/fixtures/hostile/ok_rgba_23x17.png', // semi-transparent: the canvas rounds
  jpeg: '/tests/fixtures/hostile/ok_baseline_64x48.jpg',
  jpegProgressive: '/tests/fixtures/hostile/ok_progressive_64x48.jpg',
};
const HOSTILE = [
  'finding3_dht_over_256.jpg', 'finding3_progressive_undefined_huffman.jpg', 'finding3_baseline_undefined_huffman.jpg',
  'finding3_png_idat_claims_gb.png', 'finding3_png_idat_too_much.png', 'finding3_png_zlib_bomb.png',
  'finding5_png_chunk_not_utf8.png',
];
// files that end early: Firefox and WebKit decode them to a partial picture, so they never
// reach the browser's decoder; the library refuses them
const UNREADABLE = ['finding3_png_idat_claims_gb.png'];
const CUT = { png: FILES.png, jpeg: FILES.jpeg };

/** In the page: the browser's and the library's decode of each file, and the hostile files'
 * outcomes, as JSON. */
async function decodeInPage({ files, hostile, cut, worker }) {
  const { createExplainer, GcamImageError } = await import('/web/index.js');
  const ex = await createExplainer({ weights: '/weights/small/fashion_vgg.gcam', worker });
  const real = globalThis.createImageBitmap;
  const seen = { calls: 0, decoded: 0 };
  globalThis.createImageBitmap = async (...args) => {
    seen.calls++;
    const b = await real(...args);
    seen.decoded++;
    return b;
  };
  const bytes = async (url) => new Uint8Array(await (await fetch(url)).arrayBuffer());
  const out = { files: {}, hostile: {} };
  try {
    for (const [key, url] of Object.entries(files)) {
      const data = await bytes(url);
      const before = seen.decoded;
      const theirs = await ex.decodeImage(data);
      const viaBrowser = seen.decoded === before + 1;
      const ours = await ex.decodeImage(data, { decoder: 'library' });
      let maxDiff = 0, sumDiff = 0, differing = 0, maxDiffOpaque = 0;
      const same = theirs.width === ours.width && theirs.height === ours.height;
      if (same) {
        for (let i = 0; i < ours.data.length; i++) {
          const d = Math.abs(theirs.data[i] - ours.data[i]);
          if (d) differing++;
          sumDiff += d;
          if (d > maxDiff) maxDiff = d;
          if (ours.data[(i & ~3) + 3] === 255 && d > maxDiffOpaque) maxDiffOpaque = d;
        }
      }
      out.files[key] = { url, viaBrowser, width: theirs.width, height: theirs.height, oursWidth: ours.width,
                         oursHeight: ours.height, isImageData: theirs instanceof ImageData && ours instanceof ImageData,
                         maxDiff, maxDiffOpaque, meanDiff: same ? sumDiff / ours.data.length : null, differing };
    }
    for (const name of hostile) {
      const data = await bytes(`/tests/fixtures/hostile/${name}`);
      try {
        const img = await ex.decodeImage(data);
        out.hostile[name] = { decoded: true, width: img.width, height: img.height };
      } catch (e) {
        out.hostile[name] = { decoded: false, name: e.name, code: e.code, message: e.message,
                              isImageError: e instanceof GcamImageError };
      }
    }
    out.cut = {};
    for (const [key, url] of Object.entries(cut)) {
      const data = await bytes(url);
      const calls = seen.calls;
      try {
        const img = await ex.decodeImage(data.subarray(0, data.length >> 1));
        out.cut[key] = { decoded: true, width: img.width, height: img.height };
      } catch (e) {
        out.cut[key] = { decoded: false, name: e.name, code: e.code, askedBrowser: seen.calls !== calls };
      }
    }
    const gif = new TextEncoder().encode('GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x00\x00\x00\x00\x00,' +
                                         '\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;');
    const calls = seen.calls;
    try {
      await ex.decodeImage(gif);
      out.gif = { decoded: true };
    } catch (e) {
      out.gif = { decoded: false, name: e.name, code: e.code, isImageError: e instanceof GcamImageError,
                  askedBrowser: seen.calls !== calls };
    }
  } finally {
    globalThis.createImageBitmap = real;
    ex.dispose();
  }
  return JSON.stringify(out);
}

forEachEngine((engine) => {
  for (const worker of [true, false]) {
    engine.test(`decodeImage (${worker ? 'in its worker' : 'in the page'}): the browser's decoder, the library's pixels ` +
                '(PNG exact, JPEG within a few levels), hostile files as GcamImageError', { timeout: 120e3 }, async ({ browser, plainOrigin }) => {
      const page = await browser.newPage();
      try {
        await page.goto(`${plainOrigin}/__harness/monitor.js`);
        const out = JSON.parse(await page.evaluate(decodeInPage, { files: FILES, hostile: HOSTILE, cut: CUT, worker }));
        console.log(`${engine.name} (worker: ${worker}): ${JSON.stringify(out)}`);
        for (const [key, f] of Object.entries(out.files)) {
          assert.ok(f.viaBrowser, `${key}: decoded by the browser's createImageBitmap`);
          assert.ok(f.isImageData, `${key}: an ImageData`);
          assert.deepEqual([f.width, f.height], [f.oursWidth, f.oursHeight], `${key}: size`);
        }
        assert.equal(out.files.png.differing, 0, `PNG: ${out.files.png.differing} bytes differ from the library's`);
        assert.equal(out.files.pngRgba.maxDiffOpaque, 0, 'RGBA PNG: its opaque pixels are exact');
        for (const key of ['jpeg', 'jpegProgressive']) {
          const f = out.files[key];
          assert.ok(f.meanDiff <= 2, `${key}: mean difference ${f.meanDiff} levels`);
          assert.ok(f.maxDiff <= 8, `${key}: max difference ${f.maxDiff} levels`);
        }
        for (const [name, h] of Object.entries(out.hostile)) {
          if (h.decoded) {
            assert.ok(h.width > 0 && h.height > 0, `${name}: decoded by the browser to ${h.width}x${h.height}`);
            continue;
          }
          assert.ok(h.isImageError && h.name === 'GcamImageError', `${name}: ${h.name} (${h.message})`);
          assert.match(h.code, /^GCAM_STATUS_IMAGE_DECODE$/, `${name}: ${h.code}`);
        }
        for (const name of UNREADABLE) assert.equal(out.hostile[name].decoded, false, `${name} decoded`);
        for (const [key, c] of Object.entries(out.cut)) {
          assert.equal(c.decoded, false, `half a ${key} decoded to ${c.width}x${c.height}`);
          assert.equal(c.name, 'GcamImageError', `half a ${key}: ${c.name}`);
          assert.equal(c.askedBrowser, false, `half a ${key} was handed to the browser`);
        }
        assert.equal(out.gif.decoded, false, 'a GIF is not decoded');
        assert.ok(out.gif.isImageError && out.gif.code === 'GCAM_STATUS_UNSUPPORTED_FORMAT', JSON.stringify(out.gif));
        assert.equal(out.gif.askedBrowser, false, 'a GIF is not handed to the browser');
      } finally {
        await page.close();
      }
    });
  }
});
