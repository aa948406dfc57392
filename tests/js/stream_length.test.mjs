// stream_length.test.mjs: weights streamed without a length (a Response with no
// content-length: a compressed transfer, a generated stream), issue 9 finding 5. The loader
// then grows the weights with the payload received instead of reserving what the header
// claims: a 1.8 KB header announcing 840 MB holds almost nothing and fails as truncated; the
// int8 VGG16 loads to the same model as with its length, its load peak at most the finished
// heap plus an eighth of it (the one copy when the weights are reserved whole) plus a chunk,
// and still fits a 400 MB heap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createExplainer, GcamError } from '../../web/index.js';
import { ROOT, requireBuilds, randomVgg16, testImage, heapBytes } from './helpers.mjs';

requireBuilds();

/** A Response of the file's bytes in 1 MB chunks, without a content-length. */
function responseWithoutLength(file) {
  const bytes = fs.readFileSync(file);
  let off = 0;
  const body = new ReadableStream({
    pull(c) {
      if (off >= bytes.length) return c.close();
      c.enqueue(new Uint8Array(bytes.subarray(off, off + (1 << 20))));
      off += 1 << 20;
    },
  });
  const r = new Response(body);
  assert.equal(r.headers.get('content-length'), null);
  return r;
}

test('finding 5: a 1.8 KB header claiming 840 MB, streamed without a length, is TRUNCATED, also in a 64 MB heap', async () => {
  const file = path.join(ROOT, 'tests/fixtures/hostile/finding5_header_claims_gb.gcam');
  for (const maxMemoryMB of [undefined, 64]) {
    // in 64 MB, reserving what the header claims would be OUT_OF_MEMORY (it was): the loader
    // must wait for the bytes, and the stream ends first
    await assert.rejects(createExplainer({ weights: responseWithoutLength(file), worker: false, threads: 1, maxMemoryMB }),
      (e) => {
        assert.ok(e instanceof GcamError, String(e));
        assert.equal(e.code, 'GCAM_STATUS_TRUNCATED', e.message);
        assert.match(e.message, /ends at byte/);
        return true;
      });
  }
  // the same bytes with their length known: refused at the header, before any reservation
  await assert.rejects(createExplainer({ weights: new Uint8Array(fs.readFileSync(file)), worker: false, threads: 1, maxMemoryMB: 64 }),
    (e) => e instanceof GcamError && e.code === 'GCAM_STATUS_TRUNCATED');
});

test('the int8 VGG16 streamed without a length: the same model, peak <= heap + 1/8 + a chunk, fits 400 MB', { timeout: 600_000 }, async () => {
  const file = await randomVgg16('int8');
  const img = testImage(224, 224, 3);
  const known = await createExplainer({ weights: file, memory: 'compact', threads: 1, worker: false });
  const want = await known.explain(img, { topK: 1 });
  known.dispose();
  const ex = await createExplainer({ weights: responseWithoutLength(file), memory: 'compact', threads: 1, worker: false,
                                     maxMemoryMB: 400 });
  try {
    const { memoryBytes, loadPeakBytes } = ex.info;
    console.log(`# streamed without a length: heap ${memoryBytes} B, load peak ${loadPeakBytes} B, ` +
                `wasm memory ${heapBytes(ex)} B`);
    assert.ok(loadPeakBytes <= memoryBytes + memoryBytes / 8 + (2 << 20), `peak ${loadPeakBytes}, heap ${memoryBytes}`);
    const got = await ex.explain(img, { topK: 1 });
    assert.deepEqual(got.logits, want.logits, 'the same logits as the load with a length');
    assert.deepEqual(got.explanations[0].heatmap, want.explanations[0].heatmap);
  } finally {
    ex.dispose();
  }
});
