// memory.test.mjs: VGG16 in a phone's memory (issue 10). A wasm heap capped at 400 MB
// (createExplainer's maxMemoryMB): the int8 and f16 VGG16 load and explain in 'compact'
// memory; the f32 one (and f16 in 'fast' memory) fails with GCAM_STATUS_OUT_OF_MEMORY and a
// message saying how many MB were needed, no abort, no hang; a smaller model then loads.
// Also the reported memory and the argument checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createExplainer, GcamError, GcamArgumentError } from '../../web/index.js';
import { FIXTURES, requireBuilds, randomVgg16 } from './helpers.mjs';

requireBuilds();
const CAP_MB = 400;

function image(width, height) {
  const data = new Uint8ClampedArray(width * height * 4);
  let s = 7;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = (i & 3) === 3 ? 255 : s >>> 24;
  }
  return { data, width, height };
}

for (const [dtype, threads] of [['int8', 1], ['f16', 1], ['int8', 2]]) {
  test(`${dtype} VGG16, compact, ${threads} thread(s), in a ${CAP_MB} MB heap: loads and explains`, { timeout: 600_000 }, async () => {
    const ex = await createExplainer({ weights: await randomVgg16(dtype), memory: 'compact', maxMemoryMB: CAP_MB, threads, worker: false });
    try {
      assert.equal(ex.info.memory, 'compact');
      assert.ok(ex.info.wasmMemoryBytes <= CAP_MB << 20, `wasm memory ${ex.info.wasmMemoryBytes}`);
      assert.ok(ex.info.memoryBytes > 100 << 20 && ex.info.memoryBytes <= ex.info.wasmMemoryBytes, `heap ${ex.info.memoryBytes}`);
      assert.ok(ex.info.loadPeakBytes <= ex.info.memoryBytes + (16 << 20), `peak ${ex.info.loadPeakBytes}`);
      const r = await ex.explain(image(224, 224), { topK: 1 });
      assert.equal(r.predictions.length, 1);
      assert.equal(r.explanations[0].heatmap.length, 14 * 14);
      assert.ok(r.explanations[0].heatmap.every((v) => v >= 0 && v <= 1));
    } finally {
      ex.dispose();
    }
  });
}

for (const [dtype, memory] of [['f32', 'compact'], ['f16', 'fast']]) {
  test(`${dtype} VGG16 (${memory}) in a ${CAP_MB} MB heap: GCAM_STATUS_OUT_OF_MEMORY with the MB needed, then a small model loads`, { timeout: 600_000 }, async () => {
    await assert.rejects(
      createExplainer({ weights: await randomVgg16(dtype), memory, maxMemoryMB: CAP_MB, threads: 1, worker: false }),
      (e) => e instanceof GcamError && e.code === 'GCAM_STATUS_OUT_OF_MEMORY' && /\d+ MB/.test(e.message));
    const small = await createExplainer({ weights: path.join(FIXTURES, 'model.gcam'), maxMemoryMB: CAP_MB, worker: false });
    const r = await small.explain(image(64, 48));
    assert.equal(r.predictions.length, 5);
    small.dispose();
  });
}

// A 'fast' state at depth 'input' packs the backward's conv weights once and keeps them
// (VGG16: 236 MB), allocated at the first explanation whose backward crosses a conv: a heap
// with room for the weights and the state but not for those is an explainer that makes
// Grad-CAM at the last conv, answers a pixel method with GCAM_STATUS_OUT_OF_MEMORY (the MB
// needed), and goes on working.
test('int8 VGG16, fast, depth input, 700 MB heap: gradcam works, saliency is OUT_OF_MEMORY with the MB, the explainer stays usable', { timeout: 600_000 }, async () => {
  const ex = await createExplainer({ weights: await randomVgg16('int8'), memory: 'fast', depth: 'input', maxMemoryMB: 700, threads: 1, worker: false });
  try {
    const img = image(224, 224);
    const before = ex.info.memoryBytes;
    const a = await ex.explain(img, { topK: 1 });
    await assert.rejects(ex.explain(img, { topK: 1, method: 'saliency' }),
      (e) => e instanceof GcamError && e.code === 'GCAM_STATUS_OUT_OF_MEMORY' && /need \d+ MB/.test(e.message) &&
        /GCAM_MEMORY_COMPACT|compact/.test(e.message));
    const b = await ex.explain(img, { topK: 1 });
    assert.deepEqual(b.explanations[0].heatmap, a.explanations[0].heatmap);
    const c = await ex.explain(img, { topK: 1, method: 'gradcam', layer: 'block5_conv3' });
    assert.deepEqual(c.explanations[0].heatmap, a.explanations[0].heatmap);
    assert.ok(ex.info.wasmMemoryBytes <= 700 << 20, `wasm memory ${ex.info.wasmMemoryBytes}`);
    assert.ok(before > 400 << 20, `heap ${before}`);
  } finally {
    ex.dispose();
  }
});

test('memory and maxMemoryMB are checked before anything loads', async () => {
  const weights = path.join(FIXTURES, 'model.gcam');
  await assert.rejects(createExplainer({ weights, memory: 'small' }), GcamArgumentError);
  await assert.rejects(createExplainer({ weights, maxMemoryMB: 8 }), GcamArgumentError);
  await assert.rejects(createExplainer({ weights, maxMemoryMB: 'big' }), GcamArgumentError);
  const fast = await createExplainer({ weights, memory: 'fast', worker: false });
  const compact = await createExplainer({ weights, memory: 'compact', worker: false });
  assert.equal(fast.info.memory, 'fast');
  assert.equal(compact.info.memory, 'compact');
  assert.ok(compact.info.weightBytes < fast.info.weightBytes);
  const dflt = await createExplainer({ weights, worker: false }); // browsers: tests/browser/demo
  assert.equal(dflt.info.memory, 'fast', "Node's default memory mode, as the C library's and the CLI's");
  dflt.dispose();
  const img = image(50, 70);
  const a = await fast.explain(img), b = await compact.explain(img);
  assert.deepEqual(a.predictions.map((p) => p.index), b.predictions.map((p) => p.index));
  for (let i = 0; i < a.logits.length; i++) assert.ok(Math.abs(a.logits[i] - b.logits[i]) <= 1e-4 * Math.max(1, Math.abs(a.logits[i])));
  fast.dispose();
  compact.dispose();
});
