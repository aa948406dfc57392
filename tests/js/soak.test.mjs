// soak.test.mjs: the engine over many calls and many lives (issue 9): thread teardown under
// GC pauses, a flat heap over 1000 explains, memory returned over 50 create/dispose cycles,
// 20 explains in flight on one explainer each matched to its own image.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createExplainer } from '../../web/index.js';
import { FIXTURES, exposeGc, heapBytes, requireBuilds, testImage } from './helpers.mjs';

requireBuilds();

const WEIGHTS = path.join(FIXTURES, 'model.gcam');
const gc = exposeGc();
const tick = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Watch how a threaded explainer's pthreads are taken down: Emscripten reclaims a thread's
 * worker in PThread.returnWorkerToPool, which frees the thread's data (its pthread_t and
 * stack). A thread reclaimed while still running C code (its pthread_t still points at itself,
 * musl's ABI field `self`; a joined thread has it zeroed by cleanupThread) goes on running on
 * freed memory until its worker stops (emscripten-core/emscripten#18675).
 */
function watchTeardown(explainer) {
  const M = explainer._engine.M;
  const seen = { joined: 0, running: 0 };
  const reclaim = M.PThread.returnWorkerToPool;
  M.PThread.returnWorkerToPool = function (worker) {
    const ptr = worker.pthread && worker.pthread.threadInfoStruct;
    if (ptr) {
      const self = new Int32Array(M.wasmMemory.buffer)[ptr >> 2];
      if (self === ptr) seen.running++;
      else seen.joined++;
    }
    return reclaim.call(this, worker);
  };
  return seen;
}

test('finding 2: 200 create/explain/dispose cycles on threads with GC pauses; threads joined before their memory goes',
  { timeout: 300e3 }, async (t) => {
    const reference = await createExplainer({ weights: WEIGHTS, threads: 1 });
    const images = [testImage(48, 40, 1), testImage(200, 120, 2), testImage(333, 251, 3)];
    const want = [];
    for (const img of images) want.push((await reference.explain(img)).logits);
    reference.dispose();

    const t0 = performance.now();
    for (let i = 0; i < 200; i++) {
      const threads = 2 + (i % 2);
      const ex = await createExplainer({ weights: WEIGHTS, threads });
      assert.equal(ex.info.threads, threads);
      const seen = watchTeardown(ex);
      const k = i % images.length;
      const r = await ex.explain(images[k]);
      assert.deepEqual(r.logits, want[k], `cycle ${i}: the answer`);
      if (i % 2) gc(); // a pause while the pool's workers wait
      ex.dispose();
      assert.equal(seen.running, 0, `cycle ${i}: a pool thread was torn down while it still ran`);
      assert.equal(seen.joined, threads - 1, `cycle ${i}: every pool thread exited and was joined`);
      gc();
      if (i % 5 === 0) await tick(i % 3); // let the terminated workers go
    }
    t.diagnostic(`200 cycles in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  });

test('finding 2: a pool worker that fails marks the explainer broken instead of taking Node down', async () => {
  const ex = await createExplainer({ weights: WEIGHTS, threads: 2 });
  const img = testImage(30, 30);
  await ex.explain(img);
  const [worker] = [...ex._engine.M.PThread.runningWorkers];
  // what Node does when code in a worker_thread throws: an 'error' event on the Worker, which
  // Emscripten's handler re-threw on the main thread, uncaught
  assert.doesNotThrow(() => worker.emit('error', new Error('a worker failed')));
  await assert.rejects(ex.explain(img), (e) => e.code === 'GCAM_STATUS_BAD_STATE' && /failed earlier/.test(e.message));
  ex.dispose();
});

test('soak: 1000 explains keep the wasm heap flat', { timeout: 300e3 }, async (t) => {
  const ex = await createExplainer({ weights: WEIGHTS }); // Node's default: threads
  try {
    const images = Array.from({ length: 10 }, (_, k) => testImage(40 + 29 * k, 300 - 23 * k, 100 + k));
    const run = async (i) => {
      const img = images[i % images.length];
      img.data[(i * 4) % img.data.length] = i & 0xff; // a new image every time: a new forward
      const r = await ex.explain(img, { topK: 3 });
      if (i % 4 === 0) {
        const again = await ex.explain(img, { classIndex: [(i >> 2) % 10, 0], score: 'softmax' });
        assert.equal(again.forwardReused, true);
      }
      if (i % 10 === 0) await ex.overlay(img, r.explanations[0]);
      return r;
    };
    for (let i = 0; i < 20; i++) await run(i); // every buffer at its largest
    const start = heapBytes(ex);
    for (let i = 20; i < 1000; i++) await run(i);
    const end = heapBytes(ex);
    t.diagnostic(`wasm heap after 20 explains: ${start} bytes; after 1000: ${end} bytes`);
    assert.equal(end, start, 'the heap did not grow');
  } finally {
    ex.dispose();
  }
});

test('soak: 50 create/dispose cycles give their memory back', { timeout: 300e3 }, async (t) => {
  const memories = [];
  const img = testImage(64, 64);
  const rss0 = process.memoryUsage().rss;
  for (let i = 0; i < 50; i++) {
    const ex = await createExplainer({ weights: WEIGHTS, threads: 1 + (i % 2) });
    await ex.explain(img);
    const M = ex._engine.M;
    memories.push(new WeakRef(M.wasmMemory ? M.wasmMemory.buffer : M.HEAPU8.buffer));
    ex.dispose();
    if (i % 10 === 9) gc();
  }
  let alive = memories.length;
  for (let round = 0; round < 100 && alive > 1; round++) {
    await tick(50); // terminated workers let go of the shared memories
    gc();
    alive = memories.filter((w) => w.deref() !== undefined).length;
  }
  const rss = process.memoryUsage().rss;
  t.diagnostic(`wasm memories still reachable after 50 disposed explainers: ${alive}; ` +
               `rss ${(rss0 / 2 ** 20).toFixed(0)} -> ${(rss / 2 ** 20).toFixed(0)} MiB`);
  assert.ok(alive <= 1, `${alive} of 50 disposed explainers' memories are still reachable`);
});

test('soak: 20 explains in flight on one explainer each get their own image\'s answer', async () => {
  const ex = await createExplainer({ weights: WEIGHTS });
  const ref = await createExplainer({ weights: WEIGHTS, threads: 1 });
  try {
    const images = Array.from({ length: 20 }, (_, k) => testImage(30 + 7 * (k % 5), 30 + 5 * (k % 4), 500 + k));
    const classes = images.map((_, k) => k % 10);
    const results = await Promise.all(images.map((img, k) => ex.explain(img, { classIndex: classes[k] })));
    for (let k = 0; k < images.length; k++) {
      const want = await ref.explain(images[k], { classIndex: classes[k] });
      assert.deepEqual(results[k].logits, want.logits, `image ${k}`);
      assert.equal(results[k].explanations[0].classIndex, classes[k]);
      assert.deepEqual(results[k].explanations[0].heatmap, want.explanations[0].heatmap, `image ${k}`);
    }
  } finally {
    ex.dispose();
    ref.dispose();
  }
});
