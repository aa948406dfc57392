// memcap.test.mjs: out of memory anywhere under a wasm memory cap (issue 9). Node runs with
// --wasm-max-mem-pages=N (64 KiB pages), for a sweep of caps around what a small model needs
// to load (its weights), to create its state (224x224 activations) and to explain (a 3000x3000
// image): every failure is a GcamError, and after one the explainer either still gives right
// answers or is cleanly broken (every call GCAM_STATUS_BAD_STATE), never a crash or a wrong
// answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { randomWeights, requireBuilds, ROOT } from './helpers.mjs';

requireBuilds();
const run = promisify(execFile);

// One explainer under the cap: each step's outcome as a JSON line.
const CHILD = `
import { createExplainer, GcamError } from ${JSON.stringify(path.join(ROOT, 'web/index.js'))};
const [weights, threads] = [process.argv[1], Number(process.argv[2])];
const image = (s, v) => ({ data: new Uint8ClampedArray(s * s * 4).fill(v), width: s, height: s });
const say = (o) => console.log(JSON.stringify(o));
const outcome = async (step, fn) => {
  try {
    const value = await fn();
    say({ step, ok: true, value });
    return true;
  } catch (e) {
    say({ step, ok: false, gcam: e instanceof GcamError, name: e && e.constructor.name, code: e.code, message: String(e.message) });
    return false;
  }
};
let ex;
if (!(await outcome('load', async () => { ex = await createExplainer({ weights, threads, depth: 'input' }); return ex.info.threads; })))
  process.exit(0);
const small = image(64, 77);
const top = async () => (await ex.explain(small, { topK: 3 })).predictions.map((p) => p.index);
await outcome('explain small', top);
await outcome('explain huge', async () => (await ex.explain(image(3000, 9))).predictions[0].index);
await outcome('explain small again', top);
await outcome('overlay huge', async () => {
  const img = image(2500, 5);
  return (await ex.overlay(img, (await ex.explain(small)).explanations[0])).width;
});
await outcome('explain small at the end', top);
ex.dispose();
`;

async function underCap(pages, weights, threads) {
  const { stdout } = await run(process.execPath, [`--wasm-max-mem-pages=${pages}`, '--input-type=module', '-e', CHILD,
                                                  weights, String(threads)], { timeout: 120e3, maxBuffer: 1 << 20 });
  return stdout.trim().split('\n').map((l) => JSON.parse(l));
}

test('issue 9 memory cap: OOM at load, at state creation and in explain is a GcamError; the explainer stays right or is cleanly broken',
  { timeout: 600e3 }, async (t) => {
    // VGG11 with a quarter of the widths at 224x224: 3 MB of weights, their packed copy, and
    // activations large enough that each of load, state and explain can be the one that fails:
    // the state is made with depth 'input' (every conv output kept, ~10 MB), since a default
    // state (two ping-pong buffers) fits in what the load's staging freed
    const weights = await randomWeights('vgg11-div4-224-dense32',
      ['--arch', 'vgg11', '--width-div', '4', '--input-size', '224', '--dense', '32', '--classes', '10', '--seed', '3']);
    const uncapped = await underCap(65536, weights, 1);
    const want = uncapped.find((o) => o.step === 'explain small').value;
    assert.ok(uncapped.every((o) => o.ok), JSON.stringify(uncapped));

    const phases = new Set();
    // from the initial heap (256 pages) up, until four caps in a row were enough to load
    for (let pages = 256, i = 0, loaded = 0; loaded < 4 && pages <= 4096; pages += 16, i++) {
      const threads = 1 + (i % 2);
      const out = await underCap(pages, weights, threads);
      loaded = out[0].ok ? loaded + 1 : 0;
      let broken = false;
      for (const o of out) {
        const where = `${pages} pages, ${threads} thread(s), ${o.step}`;
        if (!o.ok) {
          assert.ok(o.gcam, `${where}: a GcamError, got ${o.name}: ${o.message}`);
          if (o.code === 'GCAM_STATUS_BAD_STATE') broken = true;
          else assert.ok(!broken, `${where}: after a BAD_STATE every call is BAD_STATE, got ${o.code}`);
          if (o.code === 'GCAM_STATUS_OUT_OF_MEMORY' || o.code === 'GCAM_STATUS_BACKEND')
            phases.add(o.step === 'load' ? (/state/.test(o.message) ? 'state' : 'load') : 'explain');
        } else if (o.step.startsWith('explain small')) {
          assert.ok(!broken, `${where}: an answer after the engine broke`);
          assert.deepEqual(o.value, want, `${where}: the right top-3`);
        }
      }
      t.diagnostic(`${pages} pages, ${threads} thread(s): ` +
                   out.map((o) => `${o.step} ${o.ok ? 'ok' : `${o.code} (${o.message})`}`).join(', '));
    }
    for (const phase of ['load', 'state', 'explain'])
      assert.ok(phases.has(phase), `the sweep ran out of memory while in ${phase} (seen: ${[...phases].join(', ')})`);
  });
