// threads.test.mjs: the threaded WebAssembly build (gcam-simd-threads: SIMD + pthreads on
// worker_threads) gives bit-identical results to the single-thread SIMD build, is chosen by
// the `threads` option, falls back to one thread where shared memory is missing, checks its
// argument, and does not keep Node alive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createExplainer, GcamArgumentError } from '../../web/index.js';
import { DIST, FIXTURES, ROOT, requireBuilds } from './helpers.mjs';

requireBuilds();
for (const f of ['gcam-simd-threads.mjs', 'gcam-simd-threads.wasm', 'gcam-simd-threads.worker.js'])
  if (!fs.existsSync(path.join(DIST, f))) throw new Error(`web/dist/${f} is missing: run bash scripts/build.sh wasm`);

const MODELS = ['model.gcam', 'model_torch.gcam'];
const IMAGES = ['img0.png', 'img1.png'];

function bytes(f32) {
  return Buffer.from(f32.buffer, f32.byteOffset, f32.byteLength);
}

/** every class of the model explained, both scores, on each image */
async function runAll(weights, threads) {
  const ex = await createExplainer({ weights, threads });
  const out = { threads: ex.info.threads, runs: [] };
  try {
    for (const name of IMAGES) {
      const img = await ex.decodeImage(fs.readFileSync(path.join(FIXTURES, name)));
      const classIndex = [...Array(ex.info.nClasses).keys()];
      for (const score of ['logit', 'softmax']) {
        const r = await ex.explain(img, { topK: ex.info.nClasses, classIndex, score });
        out.runs.push({
          logits: bytes(r.logits),
          predictions: r.predictions.map((p) => [p.index, p.probability, p.logit]),
          maps: r.explanations.map((e) => bytes(e.heatmap)),
          rawMax: r.explanations.map((e) => e.rawMax),
        });
      }
    }
  } finally {
    ex.dispose();
  }
  return out;
}

test('the threaded build is SIMD, uses shared memory and atomics', () => {
  const text = execFileSync('wasm-dis', [path.join(DIST, 'gcam-simd-threads.wasm')],
                            { maxBuffer: 1 << 30, encoding: 'utf8' });
  assert.ok((text.match(/\bv128\b|\b[if](8x16|16x8|32x4|64x2)\./g) || []).length > 100, 'SIMD instructions');
  assert.match(text, /\(import "a" "a" \(memory \$\S+ \d+ \d+ shared\)\)|memory.*shared/, 'shared memory');
  assert.match(text, /atomic/, 'atomic instructions');
});

for (const model of MODELS) {
  test(`${model}: 2, 3 and 4 threads equal one thread bit for bit`, async () => {
    const weights = path.join(FIXTURES, model);
    const one = await runAll(weights, 1);
    assert.equal(one.threads, 1);
    for (const n of [2, 3, 4]) {
      const many = await runAll(weights, n);
      assert.equal(many.threads, n, `info.threads with threads: ${n}`);
      assert.equal(many.runs.length, one.runs.length);
      for (let i = 0; i < one.runs.length; i++) {
        const a = one.runs[i], b = many.runs[i];
        assert.ok(a.logits.equals(b.logits), `${n} threads, run ${i}: logits differ`);
        assert.deepEqual(b.predictions, a.predictions, `${n} threads, run ${i}: predictions differ`);
        assert.deepEqual(b.rawMax, a.rawMax, `${n} threads, run ${i}: raw maxima differ`);
        for (let c = 0; c < a.maps.length; c++)
          assert.ok(a.maps[c].equals(b.maps[c]), `${n} threads, run ${i}, class ${c}: heatmaps differ`);
      }
    }
  });
}

test("threads 'auto' (the default) picks the threaded build in Node, 1 the single-thread one", async () => {
  const weights = path.join(FIXTURES, 'model.gcam');
  const auto = await createExplainer({ weights });
  const cores = (await import('node:os')).availableParallelism();
  assert.equal(auto.info.threads, Math.max(1, Math.min(8, cores)));
  auto.dispose();
  const one = await createExplainer({ weights, threads: 1 });
  assert.equal(one.info.threads, 1);
  one.dispose();
});

test('without SharedArrayBuffer (a page that is not cross-origin isolated) one thread runs', async () => {
  const weights = path.join(FIXTURES, 'model.gcam');
  const sab = globalThis.SharedArrayBuffer;
  let ex;
  try {
    delete globalThis.SharedArrayBuffer;
    ex = await createExplainer({ weights, threads: 2 });
  } finally {
    globalThis.SharedArrayBuffer = sab;
  }
  assert.equal(ex.info.threads, 1);
  const img = await ex.decodeImage(fs.readFileSync(path.join(FIXTURES, 'img0.png')));
  assert.equal((await ex.explain(img)).explanations.length, 1);
  ex.dispose();
});

test('a bad threads option is a GcamArgumentError', async () => {
  const weights = path.join(FIXTURES, 'model.gcam');
  for (const threads of [0, -1, 2.5, 17, '2', 'many', null])
    await assert.rejects(createExplainer({ weights, threads }), GcamArgumentError, String(threads));
});

test('an explainer on threads that is never disposed does not keep Node alive', () => {
  const script = `
    import { createExplainer } from ${JSON.stringify(path.join(ROOT, 'web/index.js'))};
    const ex = await createExplainer({ weights: ${JSON.stringify(path.join(FIXTURES, 'model.gcam'))}, threads: 2 });
    console.log(ex.info.threads);`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script],
                           { encoding: 'utf8', timeout: 60000 });
  assert.equal(out.trim(), '2');
});
