// api.test.mjs: the JS API's contract, in Node: every weights source, progress, the forward
// cache, argument errors thrown before any C call, and C failures as typed errors.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  createExplainer, simdSupported, GcamError, GcamArgumentError, GcamDisposedError, GcamWeightsError,
} from '../../web/index.js';
import { FIXTURES, requireBuilds, countDiff, testImage } from './helpers.mjs';

requireBuilds();

const WEIGHTS = path.join(FIXTURES, 'model.gcam');
const SHA = fs.readFileSync(path.join(FIXTURES, 'manifest.txt'), 'utf8')
  .split('\n').find((l) => l.startsWith('model m0 ')).split(' ').pop();

const image = testImage;

test('SIMD is detected in Node 20', () => {
  assert.equal(simdSupported(), true);
});

describe('weights sources', () => {
  const bytes = fs.readFileSync(WEIGHTS);
  const img = image(64, 48);
  let expected;
  before(async () => {
    const ex = await createExplainer({ weights: WEIGHTS });
    expected = await ex.explain(img);
    ex.dispose();
  });
  const sources = {
    'a path': () => WEIGHTS,
    'a file: URL': () => pathToFileURL(WEIGHTS),
    'an ArrayBuffer': () => new Uint8Array(bytes).buffer,
    'a Uint8Array (a view at an offset)': () => {
      const big = new Uint8Array(bytes.length + 7);
      big.set(bytes, 7);
      return big.subarray(7);
    },
    'a Blob': () => new Blob([bytes]),
    'a Response': () => new Response(new Blob([bytes]), { headers: { 'content-length': String(bytes.length) } }),
  };
  for (const [name, make] of Object.entries(sources)) {
    test(`from ${name}: same model, same answer, progress up to the file size`, async () => {
      const seen = [];
      const ex = await createExplainer({ weights: make(), onProgress: (p) => seen.push(p) });
      try {
        assert.equal(ex.info.sha256, SHA);
        assert.equal(ex.info.nClasses, 10);
        assert.deepEqual(ex.labels, Array.from({ length: 10 }, (_, i) => `class${i}`));
        const r = await ex.explain(img);
        assert.deepEqual(r.logits, expected.logits);
        assert.deepEqual(r.explanations[0].heatmap, expected.explanations[0].heatmap);
        assert.ok(seen.length >= 2, 'progress reported at start and end');
        for (let i = 1; i < seen.length; i++) assert.ok(seen[i].loaded >= seen[i - 1].loaded, 'progress is monotonic');
        assert.deepEqual(seen[seen.length - 1], { loaded: bytes.length, total: bytes.length });
      } finally {
        ex.dispose();
      }
    });
  }
});

describe('explain', () => {
  let ex;
  before(async () => {
    ex = await createExplainer({ weights: WEIGHTS });
  });
  after(() => ex.dispose());

  test('result shape', async () => {
    const r = await ex.explain(image(50, 70), { topK: 3 });
    assert.equal(r.predictions.length, 3);
    for (const p of r.predictions) {
      assert.ok(Number.isInteger(p.index) && p.index >= 0 && p.index < 10);
      assert.equal(p.label, `class${p.index}`);
      assert.ok(p.probability > 0 && p.probability < 1);
      assert.equal(p.logit, r.logits[p.index]);
    }
    assert.ok(r.predictions[0].logit >= r.predictions[1].logit);
    assert.equal(r.explanations.length, 1);
    const e = r.explanations[0];
    assert.equal(e.classIndex, r.predictions[0].index, 'default: the top class');
    assert.equal(e.width, 14);
    assert.equal(e.height, 14);
    assert.ok(e.heatmap instanceof Float32Array && e.heatmap.length === 196);
    const max = Math.max(...e.heatmap);
    assert.ok(max === 1 || (max === 0 && e.rawMax === 0), `normalised map, max ${max}`);
    assert.ok(Math.min(...e.heatmap) >= 0);
  });

  test('another class of the same image reuses the forward pass', async () => {
    const img = image(80, 60, 7);
    const a = await ex.explain(img, { classIndex: 2 });
    assert.equal(a.forwardReused, false);
    // a copy with the same pixels counts as the same image
    const copy = { data: new Uint8ClampedArray(img.data), width: 80, height: 60 };
    const b = await ex.explain(copy, { classIndex: 5 });
    assert.equal(b.forwardReused, true);
    assert.deepEqual(b.logits, a.logits);
    // and gives what a fresh forward gives
    const fresh = await createExplainer({ weights: WEIGHTS });
    const c = await fresh.explain(img, { classIndex: 5 });
    fresh.dispose();
    assert.deepEqual(b.explanations[0].heatmap, c.explanations[0].heatmap);
    assert.equal(b.explanations[0].rawMax, c.explanations[0].rawMax);
    // several classes in one call, in the order asked
    const d = await ex.explain(img, { classIndex: [5, 2], score: 'softmax' });
    assert.equal(d.forwardReused, true);
    assert.deepEqual(d.explanations.map((e) => e.classIndex), [5, 2]);
  });

  test('a changed pixel, or another size, runs the forward again', async () => {
    const img = image(40, 40, 3);
    await ex.explain(img);
    img.data[1234] ^= 1; // mutate the same object in place
    const r = await ex.explain(img);
    assert.equal(r.forwardReused, false);
    const r2 = await ex.explain({ data: img.data, width: 20, height: 80 });
    assert.equal(r2.forwardReused, false);
  });

  test('overlay: the image\'s own size, alpha copied, alpha 0 gives 0.9 * image', async () => {
    const img = image(33, 21, 9);
    for (let i = 3; i < img.data.length; i += 4) img.data[i] = i & 0xff;
    const r = await ex.explain(img);
    const o = await ex.overlay(img, r.explanations[0]);
    assert.equal(o.width, 33);
    assert.equal(o.height, 21);
    assert.ok(o.data instanceof Uint8ClampedArray);
    for (let i = 3; i < o.data.length; i += 4) assert.equal(o.data[i], img.data[i]);
    const plain = await ex.overlay(img, r.explanations[0], { alpha: 0 });
    let bad = 0;
    for (let i = 0; i < img.data.length; i++) {
      if ((i & 3) === 3) continue;
      const want = Math.round(0.9 * img.data[i]);
      if (Math.abs(plain.data[i] - want) > 1) bad++;
    }
    assert.equal(bad, 0);
    assert.ok(countDiff(o.data, plain.data) > 0, 'the heatmap shows at alpha 0.4');
    const gray = await ex.overlay(img, r.explanations[0], { colormap: 'gray' });
    assert.ok(countDiff(gray.data, o.data) > 0);
  });

  test('argument errors are thrown before any C call', async () => {
    const img = image(10, 10);
    const bad = [
      [undefined, /expected an ImageData/],
      [{ data: new Uint8ClampedArray(399), width: 10, height: 10 }, /has 399 bytes/],
      [{ data: new Uint8ClampedArray(400), width: 0, height: 10 }, /positive integers/],
      [{ data: new Uint8ClampedArray(400), width: 10.5, height: 10 }, /positive integers/],
      [{ data: new Float32Array(400), width: 10, height: 10 }, /Uint8ClampedArray/],
    ];
    for (const [arg, re] of bad) {
      await assert.rejects(ex.explain(arg), (e) => e instanceof GcamArgumentError && e.code === 'GCAM_STATUS_INVALID_ARGUMENT' && re.test(e.message));
    }
    for (const classIndex of [10, -1, 1.5, '3', [1, 99]])
      await assert.rejects(ex.explain(img, { classIndex }), (e) => e instanceof GcamArgumentError && /out of range/.test(e.message));
    for (const topK of [0, 11, 2.5])
      await assert.rejects(ex.explain(img, { topK }), GcamArgumentError);
    await assert.rejects(ex.explain(img, { score: 'prob' }), GcamArgumentError);
    const r = await ex.explain(img);
    await assert.rejects(ex.overlay({ data: new Uint8ClampedArray(4), width: 2, height: 1 }, r.explanations[0]), GcamArgumentError);
    await assert.rejects(ex.overlay(img, { heatmap: new Float32Array(3), width: 14, height: 14 }), GcamArgumentError);
    await assert.rejects(ex.overlay(img, r.explanations[0], { alpha: NaN }), GcamArgumentError);
    await assert.rejects(ex.overlay(img, r.explanations[0], { colormap: 'viridis' }), GcamArgumentError);
    // the explainer still works after all that
    const again = await ex.explain(img);
    assert.deepEqual(again.logits, r.logits);
  });

  test('decodeImage: the library decoder\'s errors are typed', async () => {
    await assert.rejects(ex.decodeImage(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])),
      (e) => e instanceof GcamError && /^GCAM_STATUS_(IMAGE_DECODE|UNSUPPORTED_FORMAT)$/.test(e.code));
    const gif = new TextEncoder().encode('GIF89a\x01\x00\x01\x00\x00\x00\x00;');
    await assert.rejects(ex.decodeImage(gif), (e) => e instanceof GcamError && e.code === 'GCAM_STATUS_UNSUPPORTED_FORMAT');
    const png = await ex.decodeImage(fs.readFileSync(path.join(FIXTURES, 'img0.png')));
    assert.equal(png.width, 203);
    assert.equal(png.height, 157);
  });
});

test('calls after dispose throw GcamDisposedError', async () => {
  const ex = await createExplainer({ weights: WEIGHTS });
  const img = image(8, 8);
  const r = await ex.explain(img);
  ex.dispose();
  ex.dispose(); // twice is fine
  await assert.rejects(ex.explain(img), (e) => e instanceof GcamDisposedError && e.code === 'GCAM_STATUS_BAD_STATE');
  await assert.rejects(ex.overlay(img, r.explanations[0]), GcamDisposedError);
  await assert.rejects(ex.decodeImage(new Uint8Array(8)), GcamDisposedError);
});

describe('bad weights become GcamError with the C status', () => {
  const good = fs.readFileSync(WEIGHTS);
  const payloadOffset = Number(good.readBigUInt64LE(16));
  const mutate = (fn) => {
    const b = new Uint8Array(good);
    fn(b);
    return b;
  };
  const cases = {
    'a flipped payload byte': [mutate((b) => { b[payloadOffset + 100] ^= 0x40; }), 'GCAM_STATUS_CORRUPT'],
    'a wrong magic': [mutate((b) => { b[0] = 0x47 + 1; }), 'GCAM_STATUS_BAD_FILE'],
    'version 2': [mutate((b) => { b[8] = 2; }), 'GCAM_STATUS_UNSUPPORTED_VERSION'],
    'a truncated file': [new Uint8Array(good.subarray(0, good.length - 1000)), 'GCAM_STATUS_TRUNCATED'],
    'a PNG instead of weights': [new Uint8Array(fs.readFileSync(path.join(FIXTURES, 'img0.png'))), 'GCAM_STATUS_BAD_FILE'],
  };
  for (const [name, [bytes, code]] of Object.entries(cases)) {
    for (const simd of [true, false]) {
      test(`${name} (${simd ? 'SIMD' : 'scalar'}) -> ${code}`, async () => {
        await assert.rejects(createExplainer({ weights: bytes, simd }), (e) => {
          assert.ok(e instanceof GcamError, `a GcamError, got ${e}`);
          assert.equal(e.code, code, e.message);
          assert.ok(e.message.length > 'loading weights: '.length, 'carries the C message');
          return true;
        });
      });
    }
  }
  test('a missing file is a GcamWeightsError', async () => {
    await assert.rejects(createExplainer({ weights: path.join(FIXTURES, 'no-such-file.gcam') }),
      (e) => e instanceof GcamWeightsError && e.code === 'GCAM_STATUS_IO' && /not found/.test(e.message));
  });
  test('no weights, or weights of a wrong type, are argument errors', async () => {
    await assert.rejects(createExplainer({}), GcamArgumentError);
    await assert.rejects(createExplainer({ weights: 42 }), GcamArgumentError);
    await assert.rejects(createExplainer({ weights: WEIGHTS, onProgress: 'yes' }), GcamArgumentError);
  });
});
