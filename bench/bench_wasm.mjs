#!/usr/bin/env node
// bench_wasm.mjs: WebAssembly forward and Grad-CAM times in Node, next to the native CLI
// measured in the same run, on the same weights and image.
//
//   node bench/bench_wasm.mjs [WEIGHTS.gcam ...] [--runs N] [--scalar] [--image IMG]
//                             [--cli build/gcam]
//
// Default weights: the small model (weights/small/fashion_vgg.gcam, else the core's test
// model). Pass a full VGG16 (weights/make_random.py --arch vgg16 OUT.gcam) for real figures.
//
// wasm: load once (compile + stream + check the weights), then one warm-up and the median of
// N runs of each step, timed inside the explainer (forward = resize + preprocess + VGG
// forward; Grad-CAM = one backward through the dense head + the map, forward reused).
// native: the CLI is a whole process (read + check the weights, decode, forward, one
// Grad-CAM): its median wall time is set against the wasm's load + forward + Grad-CAM.
// The CLI prints no step times, so the native steps are not split here.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createExplainer } from '../web/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const run = promisify(execFile);

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const runs = Number(opt('--runs', 7));
const image = path.resolve(opt('--image', path.join(ROOT, 'tests/fixtures/vgg_small/img0.png')));
const cli = path.resolve(opt('--cli', process.env.GCAM_CLI || path.join(ROOT, 'build/gcam')));
const withScalar = args.includes('--scalar');
let models = args.filter((a) => !a.startsWith('--'));
if (!models.length) {
  const small = path.join(ROOT, 'weights/small/fashion_vgg.gcam');
  models = [fs.existsSync(small) ? small : path.join(ROOT, 'tests/fixtures/vgg_small/model.gcam')];
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length & 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (ms) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2)).padStart(8);

async function wasmTimes(weights, simd) {
  const t0 = performance.now();
  const ex = await createExplainer({ weights, simd, worker: false });
  const loadMs = performance.now() - t0;
  const img = await ex.decodeImage(fs.readFileSync(image));
  // a second image with one pixel changed forces a new forward on every run
  const img2 = { data: new Uint8ClampedArray(img.data), width: img.width, height: img.height };
  img2.data[0] ^= 1;
  const forward = [];
  const gradcam = [];
  const second = (ex.info.nClasses > 1) ? 1 : 0;
  for (let i = 0; i <= runs; i++) {
    const r = await ex.explain(i & 1 ? img2 : img, { topK: 1 });
    const g = await ex.explain(i & 1 ? img2 : img, { topK: 1, classIndex: second });
    if (r.forwardReused || !g.forwardReused) throw new Error('bench: forward cache not behaving as expected');
    if (i === 0) continue; // warm-up
    forward.push(r.timings.forwardMs);
    gradcam.push(g.timings.explainMs);
  }
  const info = ex.info;
  ex.dispose();
  return { loadMs, forwardMs: median(forward), gradcamMs: median(gradcam), info };
}

async function nativeTimes(weights) {
  const argv = ['explain', '--weights', weights, '--image', image, '--top-k', '1', '--json'];
  const xs = [];
  for (let i = 0; i <= runs; i++) {
    const t0 = performance.now();
    await run(cli, argv, { maxBuffer: 64 << 20 });
    if (i > 0) xs.push(performance.now() - t0);
  }
  return { totalMs: median(xs) };
}

console.log(`bench_wasm: node ${process.version}, image ${path.relative(ROOT, image)}, median of ${runs} runs (ms)`);
for (const weights of models) {
  const rows = [];
  const simd = await wasmTimes(weights, true);
  rows.push(['wasm SIMD (Node)', simd]);
  if (withScalar) rows.push(['wasm scalar (Node)', await wasmTimes(weights, false)]);
  let native = null;
  if (fs.existsSync(cli)) {
    native = await nativeTimes(weights);
    rows.push(['native CLI (whole process)', native]);
  } else {
    console.log(`  (no native CLI at ${cli}: build it or pass --cli)`);
  }
  const i = simd.info;
  console.log(`\n${path.relative(ROOT, weights).startsWith('..') ? weights : path.relative(ROOT, weights)}: ${i.nConv} conv + ${i.nDense} dense, input ` +
              `${i.inputWidth}x${i.inputHeight}, ${i.nClasses} classes, ${(i.weightBytes / 1e6).toFixed(1)} MB of weights`);
  const dash = '-'.padStart(8);
  console.log(`  ${'build'.padEnd(30)}${'load'.padStart(8)}${'forward'.padStart(8)}${'Grad-CAM'.padStart(9)}` +
              `${'total'.padStart(9)}`);
  for (const [name, t] of rows) {
    const total = t.totalMs ?? t.loadMs + t.forwardMs + t.gradcamMs;
    const steps = t.totalMs === undefined ? `${fmt(t.loadMs)}${fmt(t.forwardMs)} ${fmt(t.gradcamMs)}` : `${dash}${dash} ${dash}`;
    console.log(`  ${name.padEnd(30)}${steps} ${fmt(total)}`);
  }
  if (native)
    console.log(`  total, wasm SIMD / native: ${((simd.loadMs + simd.forwardMs + simd.gradcamMs) / native.totalMs).toFixed(2)}x`);
}
