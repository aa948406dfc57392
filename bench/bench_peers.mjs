#!/usr/bin/env node
// bench_peers.mjs: our WebAssembly VGG16 forward + Grad-CAM next to TensorFlow.js
// (tfjs-backend-wasm, XNNPACK inside) and onnxruntime-web (wasm), timed in the same run on
// the same weights and input, plus a check that all of them compute the same thing.
//
//   node bench/bench_peers.mjs [--runs N] [--weights VGG.gcam] [--cache DIR]
//                              [--threads 1,2] [--no-tfjs] [--no-ort] [--no-torch]
//                              [--memory-rows] [--only-memory-rows]
//                              [--methods [m1,m2,...]] [--methods-memory fast,compact]
//
// --methods: then, after the peers' table, each explanation method's cost on one forward:
// one explainer of depth 'input' per thread count; per round the forward alone (a fresh
// image, timings.forwardMs) and then each method (all 13 by default, or the listed ones) on
// that reused forward (timings.explainMs, forwardReused checked) at the last conv, with its
// ratio to the forward of the same round (median of the rounds' ratios: saliency's is the
// issue's <= 1.2x target); in the same rounds tfjs's forward and its tf.grad of the top
// logit w.r.t. the input, whose gradient is checked against ours first (on the bench's
// inputs and on a noise image, where no pool window has a tie). --methods-memory: the memory
// modes whose explainers are timed (default fast; a compact explainer's gradient is compared
// with the first explainer's for information: its weights are transformed in f32, so an
// argmax may flip). The warm-up round runs every
// method, smoothgrad and integrated-gradients with 2 samples / steps (the same code path, a
// fraction of the time). Ours on n threads and tfjs (1 thread) run in turn in each round.
//
// --memory-rows: then one row per (file dtype f32 | f16 | int8) x (memory fast | compact):
// file MB, wasm heap MB in use after load, peak heap in use during load, the wasm memory's
// size, forward and forward + Grad-CAM on each thread count with their ratios to f32 fast
// (and compact's to fast on the same file), and fidelity against the f32 file in fast mode
// (top-1, logits, maps) on the bench's inputs. The f16 and int8 files are
// weights/make_random.py's same seed in those dtypes. Per file and thread count the fast and
// the compact explainer are loaded side by side and their runs interleaved (up to 1.3 GB),
// after the peers' table.
//
// See bench/peers/README.md. Peers live in bench/peers/package.json (installed here on first
// use), never in the project's dependencies. Default weights: a seeded random VGG16
// (weights/make_random.py --arch vgg16 --seed 1), made in DIR (default $TMPDIR/gcam-peers)
// together with the peers' copies of it (bench/peers/make_models.py).
//
// Timing: one warm-up round, then N rounds (median reported); each round runs every engine
// once in turn, so a busy machine slows all of them alike. Times are wall clock around one
// call: ours = explain() of the top class on a fresh image (the forward is not reused), its
// forward = the explainer's own forward timing, one explainer per thread count (--threads;
// counts above 1 need the threaded build, web/dist/gcam-simd-threads.*); tfjs = tensor in ->
// logits / map out (dataSync), one thread; ORT = session.run() in a child process per thread
// count (ORT fixes its thread count once per process), timed inside the child. Ratios are
// peer / ours at the same thread count.
import { execFileSync, fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PEERS = path.join(ROOT, 'bench/peers');
const PY = '/usr/bin/python3';
const LOGIT_TOL = 1e-3; // max |l - l_ref| / max |l_ref|: same network or not
const CAM_TOL = 1e-3;   // max abs diff of two normalized 14x14 maps

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i < 0 ? dflt : args[i + 1];
};
const runs = Number(opt('--runs', 5));
const cache = path.resolve(opt('--cache', path.join(os.tmpdir(), 'gcam-peers')));
const weightsArg = opt('--weights', null);
const threadCounts = [...new Set([1, ...String(opt('--threads', '1,2')).split(',').filter(Boolean).map(Number)])];
if (!threadCounts.every((n) => Number.isInteger(n) && n >= 1)) throw new Error('--threads: a list of positive integers');
const withTfjs = !args.includes('--no-tfjs');
const withOrt = !args.includes('--no-ort');
const withTorch = !args.includes('--no-torch') && !args.includes('--only-memory-rows');
const onlyMemoryRows = args.includes('--only-memory-rows');
const memoryRows = args.includes('--memory-rows') || onlyMemoryRows;
if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs: a positive integer');
const methodsAt = args.indexOf('--methods');
const withMethods = methodsAt >= 0 && !onlyMemoryRows;
const methodList = withMethods && args[methodsAt + 1] && !args[methodsAt + 1].startsWith('--')
  ? args[methodsAt + 1].split(',').filter(Boolean) : null; // null: all of them
const methodsMemory = String(opt('--methods-memory', 'fast')).split(',').filter(Boolean);
if (!methodsMemory.every((m) => m === 'fast' || m === 'compact')) throw new Error('--methods-memory: fast and/or compact');
const GRAD_TOL = 1e-3; // max |g - g_ref| / max |g_ref| of two input gradients: the same quantity or not

const log = (...a) => console.log(...a);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length & 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const f = (v, d = 0) => (v == null ? '-' : v.toFixed(d));
const e = (v) => (v == null ? '-' : v.toExponential(1));

// ---- setup: peers' packages, weights, the peers' copies of them ----------------------------
function ensurePeers() {
  const pins = JSON.parse(fs.readFileSync(path.join(PEERS, 'package.json'), 'utf8')).dependencies;
  const installed = (p) => {
    const f = path.join(PEERS, 'node_modules', p, 'package.json');
    return fs.existsSync(f) && JSON.parse(fs.readFileSync(f, 'utf8')).version === pins[p];
  };
  if (Object.keys(pins).every(installed)) return;
  log('installing the peers into bench/peers/node_modules (npm install --prefix bench/peers) ...');
  execFileSync('npm', ['install', '--prefix', PEERS, '--no-audit', '--no-fund'], { stdio: 'inherit' });
  for (const p of Object.keys(pins)) if (!installed(p)) throw new Error(`npm did not install ${p}@${pins[p]}`);
}

function ensureModels() {
  fs.mkdirSync(cache, { recursive: true });
  const gcam = weightsArg ? path.resolve(weightsArg) : path.join(cache, 'vgg16-seed1.gcam');
  if (!fs.existsSync(gcam)) {
    if (weightsArg) throw new Error(`${gcam}: no such file`);
    log('making the random VGG16 (weights/make_random.py --arch vgg16 --seed 1) ...');
    execFileSync(PY, [path.join(ROOT, 'weights/make_random.py'), '--arch', 'vgg16', '--seed', '1', gcam], { stdio: 'inherit' });
  }
  // the exports are keyed by the file's SHA-256 (bytes 32..63 of the header)
  const head = Buffer.alloc(64);
  const fd = fs.openSync(gcam, 'r');
  fs.readSync(fd, head, 0, 64, 0);
  fs.closeSync(fd);
  const sha = head.subarray(32, 64).toString('hex');
  const dir = path.join(cache, `peers-${sha.slice(0, 16)}`);
  if (!fs.existsSync(path.join(dir, 'manifest.json'))) {
    log('exporting the peers\' models (bench/peers/make_models.py: raw f32 for tfjs, ONNX) ...');
    execFileSync(PY, [path.join(PEERS, 'make_models.py'), 'export', gcam, dir], { stdio: 'inherit' });
  }
  return { gcam, dir, sha };
}

// ---- inputs --------------------------------------------------------------------------------
/** Deterministic RGBA images at the network's input size (so resizing is the identity). */
function makeImages(w, h) {
  const textured = new Uint8ClampedArray(w * h * 4);
  let s = 12345;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 16) / 65536;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 4;
      const d = Math.hypot(x - w * 0.6, y - h * 0.4) < w * 0.2 ? 60 : 0;
      textured[i] = 128 + 90 * Math.sin(x / 9) * Math.cos(y / 13) + d + 20 * (rnd() - 0.5);
      textured[i + 1] = 110 + 80 * Math.sin((x + y) / 17) - d + 20 * (rnd() - 0.5);
      textured[i + 2] = 100 + 70 * Math.cos(x / 23 - y / 7) + 20 * (rnd() - 0.5);
      textured[i + 3] = 255;
    }
  const flat = new Uint8ClampedArray(w * h * 4).fill(128);
  for (let i = 3; i < flat.length; i += 4) flat[i] = 255;
  return [
    { name: 'textured', data: textured, width: w, height: h },
    { name: 'flat gray', data: flat, width: w, height: h },
  ];
}

/** The (H, W, 3) tensor our core makes from RGBA pixels (weights/FORMAT.md), in float32. */
function preprocess(img, man) {
  const { data, width, height } = img;
  const x = new Float32Array(width * height * 3);
  const fr = Math.fround;
  const mean = man.mean.map(fr);
  const std = man.std.map(fr);
  for (let i = 0; i < width * height; i++) {
    const r = data[4 * i], g = data[4 * i + 1], b = data[4 * i + 2];
    if (man.preprocess === 'caffe') {
      x[3 * i] = fr(b - mean[0]);
      x[3 * i + 1] = fr(g - mean[1]);
      x[3 * i + 2] = fr(r - mean[2]);
    } else {
      [r, g, b].forEach((p, c) => { x[3 * i + c] = fr(fr(fr(p / 255) - mean[c]) / std[c]); });
    }
  }
  return x;
}

// ---- comparisons ---------------------------------------------------------------------------
function logitsRel(a, ref) {
  let d = 0, m = 0;
  for (let i = 0; i < ref.length; i++) {
    d = Math.max(d, Math.abs(a[i] - ref[i]));
    m = Math.max(m, Math.abs(ref[i]));
  }
  return d / m;
}
function maxAbs(a, b) {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}
const argmax = (a) => a.reduce((bi, v, i) => (v > a[bi] ? i : bi), 0);
function nchwToHwc(g, c, h, w) {
  const out = new Float32Array(g.length);
  for (let k = 0; k < c; k++) for (let i = 0; i < h * w; i++) out[i * c + k] = g[k * h * w + i];
  return out;
}
/** gradient (H, W, C) vs reference: elements that differ, and the 2x2 window sums' diff */
function gradCompare(g, ref, h, w, c) {
  let scale = 0;
  for (const v of ref) scale = Math.max(scale, Math.abs(v));
  const tol = 1e-4 * scale;
  let differ = 0, winDiff = 0;
  for (let i = 0; i < g.length; i++) if (Math.abs(g[i] - ref[i]) > tol) differ++;
  for (let y = 0; y + 1 < h; y += 2)
    for (let x = 0; x + 1 < w; x += 2)
      for (let k = 0; k < c; k++) {
        let s1 = 0, s2 = 0;
        for (const [dy, dx] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
          const i = ((y + dy) * w + x + dx) * c + k;
          s1 += g[i];
          s2 += ref[i];
        }
        winDiff = Math.max(winDiff, Math.abs(s1 - s2));
      }
  return { differ, total: g.length, winRel: winDiff / scale, maxRel: maxAbs(g, ref) / scale };
}

// ---- ORT children --------------------------------------------------------------------------
class OrtChild {
  static async start(dir, threads) {
    const c = new OrtChild();
    c.threads = threads;
    c.proc = fork(path.join(PEERS, 'ort_child.mjs'), [dir, String(threads)], { serialization: 'advanced' });
    c.queue = [];
    c.proc.on('message', (m) => {
      const p = c.queue.shift();
      if (!p) return;
      if (m.op === 'error') p.reject(new Error(`ORT child (${threads} threads): ${m.message}`));
      else p.resolve(m);
    });
    c.proc.on('exit', (code) => {
      for (const p of c.queue.splice(0)) p.reject(new Error(`ORT child exited (${code})`));
    });
    c.ready = await c._wait();
    return c;
  }
  _wait() { return new Promise((resolve, reject) => this.queue.push({ resolve, reject })); }
  call(msg) { const p = this._wait(); this.proc.send(msg); return p; }
  async stop() {
    if (this.proc.exitCode !== null) return;
    const done = new Promise((r) => this.proc.once('exit', r));
    this.proc.send({ op: 'exit' });
    await done;
  }
}

// ---- memory rows: (file dtype x memory mode) ---------------------------------------------------
async function memoryTable(gcam, images) {
  const { createExplainer } = await import('../web/index.js');
  const files = { f32: gcam };
  for (const dt of ['f16', 'int8']) {
    files[dt] = path.join(cache, `vgg16-seed1-${dt}.gcam`);
    if (!fs.existsSync(files[dt])) {
      log(`making the ${dt} VGG16 (weights/make_random.py --arch vgg16 --seed 1 --dtype ${dt}) ...`);
      execFileSync(PY, [path.join(ROOT, 'weights/make_random.py'), '--arch', 'vgg16', '--seed', '1', '--labels',
                        '--dtype', dt, files[dt]], { stdio: 'inherit' });
    }
  }
  const MB = (b) => b / 1048576;
  const img = images[0];
  const img2 = { data: new Uint8ClampedArray(img.data), width: img.width, height: img.height };
  img2.data[0] ^= 1;
  let ref = null; // f32 fast, 1 thread: per image, its logits and top-1 map
  const rows = [];
  log(`
memory rows: load average at the start ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}`);
  // per (file, thread count): the fast and the compact explainer side by side (two wasm
  // instances, up to 1.3 GB for f32), their runs interleaved, so that the two memory modes
  // see the same machine load
  for (const dt of ['f32', 'f16', 'int8'])
    for (const n of threadCounts) {
      const pair = [];
      for (const memory of ['fast', 'compact']) {
        const ex = await createExplainer({ weights: files[dt], simd: true, threads: n, worker: false, memory });
        if ((ex.info.threads || 1) !== n) { ex.dispose(); continue; }
        const row = { dt, memory, threads: n, fileMB: MB(fs.statSync(files[dt]).size), heapMB: MB(ex.info.memoryBytes),
                      peakMB: MB(ex.info.loadPeakBytes), wasmMB: MB(ex.info.wasmMemoryBytes), fwd: [], cam: [] };
        // fidelity on every input: top-1 agreement, logit error / max |logit|, map error
        const fid = [];
        for (const im of images) {
          const r = await ex.explain(im, { topK: 1 });
          fid.push({ logits: r.logits, top: r.predictions[0].index, map: r.explanations[0].heatmap });
        }
        if (!ref) ref = fid;
        row.top1 = fid.filter((x, k) => x.top === ref[k].top).length;
        row.logitRel = Math.max(...fid.map((x, k) => logitsRel(x.logits, ref[k].logits)));
        row.mapErr = Math.max(...fid.map((x, k) => (x.top === ref[k].top ? maxAbs(x.map, ref[k].map) : NaN)));
        pair.push({ ex, row });
      }
      for (let r = 0; r <= runs; r++)
        for (const { ex, row } of pair) {
          const t = performance.now();
          const res = await ex.explain(r & 1 ? img2 : img, { topK: 1 });
          const ms = performance.now() - t;
          if (r > 0) { row.fwd.push(res.timings.forwardMs); row.cam.push(ms); }
        }
      for (const { ex, row } of pair) { ex.dispose(); rows.push(row); }
      log(`  ${dt} ${n} thr: done (load average ${os.loadavg()[0].toFixed(2)})`);
    }
  // ratios: against f32 fast at the same thread count (the minimum of each row's runs: the
  // rows run one after the other, so a minimum is the figure least moved by other load)
  const base = (n) => rows.find((r) => r.dt === 'f32' && r.memory === 'fast' && r.threads === n);
  const ratio = (r, k) => { const b = base(r.threads); return b ? Math.min(...r[k]) / Math.min(...b[k]) : null; };
  log(`
VGG16 random weights, memory per (file dtype x memory mode); heap = wasm heap in use (malloc); ` +
      `forward / fwd+CAM: median of ${runs} runs, ms; ratio: minimum of the row's runs / minimum of f32 fast's at ` +
      `the same thread count; fidelity vs the f32 file in fast mode on ${images.length} inputs`);
  log(`  ${'file'.padEnd(5)}${'memory'.padEnd(9)}${'file MB'.padStart(8)}${'heap MB'.padStart(9)}${'peak load'.padStart(10)}` +
      `${'wasm MB'.padStart(9)}${'threads'.padStart(8)}${'forward'.padStart(9)}${'ratio'.padStart(7)}${'fwd+CAM'.padStart(9)}` +
      `${'ratio'.padStart(7)}${'top-1'.padStart(7)}${'logit err'.padStart(11)}${'map err'.padStart(9)}`);
  for (const r of rows)
    log(`  ${r.dt.padEnd(5)}${r.memory.padEnd(9)}${f(r.fileMB).padStart(8)}${f(r.heapMB).padStart(9)}${f(r.peakMB).padStart(10)}` +
        `${f(r.wasmMB).padStart(9)}${String(r.threads).padStart(8)}${f(median(r.fwd)).padStart(9)}${f(ratio(r, 'fwd'), 2).padStart(7)}` +
        `${f(median(r.cam)).padStart(9)}${f(ratio(r, 'cam'), 2).padStart(7)}` +
        `${`${r.top1}/${images.length}`.padStart(7)}${e(r.logitRel).padStart(11)}${e(r.mapErr).padStart(9)}`);
  log('  fast vs compact, same file (fwd+CAM, minimum of each row\'s runs): ' + rows.filter((r) => r.memory === 'compact').map((r) => {
    const b = rows.find((x) => x.dt === r.dt && x.memory === 'fast' && x.threads === r.threads);
    return b ? `${r.dt} ${r.threads} thr ${(Math.min(...r.cam) / Math.min(...b.cam)).toFixed(3)}` : null;
  }).filter(Boolean).join(', '));
  log('  every run (fwd+CAM): ' + rows.map((r) => `${r.dt}/${r.memory}/${r.threads} ${r.cam.map((v) => f(v)).join(' ')}`).join('; '));
  log(`  load average at the end: ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}`);
}

// ---- --methods: each method's cost on one forward, tfjs's input gradient -------------------
/** Our raw input gradient (in_h, in_w, 3), from the last pixel-method explain: the C call
 * gcam_state_input_gradient, exported by the wasm build but not wrapped by the JS API, read
 * through the local explainer's engine (a bench-only look inside; null when unavailable). */
function ourInputGradient(ex) {
  const e = ex._engine;
  if (!e || !e.M || typeof e.M._gcam_state_input_gradient !== 'function') return null;
  const M = e.M;
  if (M._gcam_state_input_gradient(e.state, e.slots) !== 0) throw new Error('bench: gcam_state_input_gradient failed');
  const p = M.HEAPU32[e.slots >> 2] >> 2;
  return M.HEAPF32.slice(p, p + ex.info.inputWidth * ex.info.inputHeight * 3);
}
/** max |a - ref| / max |ref| */
function relToMax(a, ref) {
  let m = 0;
  for (const v of ref) m = Math.max(m, Math.abs(v));
  return maxAbs(a, ref) / m;
}
/** a vs ref: max |a - ref| / max |ref|, ||a - ref|| / ||ref||, and the elements beyond tol * max |ref| */
function gradStats(a, ref, tol) {
  let m = 0, d2 = 0, r2 = 0, beyond = 0;
  for (const v of ref) m = Math.max(m, Math.abs(v));
  for (let i = 0; i < ref.length; i++) {
    const d = a[i] - ref[i];
    d2 += d * d;
    r2 += ref[i] * ref[i];
    if (Math.abs(d) > tol * m) beyond++;
  }
  return { maxRel: maxAbs(a, ref) / m, l2Rel: Math.sqrt(d2 / r2), beyond, total: ref.length };
}
/** saliency's map from an (H, W, 3) gradient: max over channels of |g|, divided by its max */
function saliencyMap(g) {
  const out = new Float32Array(g.length / 3);
  let mx = 0;
  for (let i = 0; i < out.length; i++) {
    out[i] = Math.max(Math.abs(g[3 * i]), Math.abs(g[3 * i + 1]), Math.abs(g[3 * i + 2]));
    mx = Math.max(mx, out[i]);
  }
  if (mx > 0) for (let i = 0; i < out.length; i++) out[i] /= mx;
  return out;
}

async function methodsTable({ gcam, images, tensors, tfvgg, tfenv, peersOurs }) {
  const { createExplainer, methods } = await import('../web/index.js');
  const list = methodList || [...methods];
  for (const m of list) if (!methods.includes(m)) throw new Error(`--methods: unknown method ${m} (one of ${methods.join(', ')})`);
  log(`\nmethods: load average at the start ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}`);
  const exs = [];
  for (const memory of methodsMemory) for (const n of threadCounts) {
    const t = performance.now();
    const ex = await createExplainer({ weights: gcam, simd: true, threads: n, worker: false, depth: 'input', memory });
    if ((ex.info.threads || 1) !== n) {
      log(`methods: asked for ${n} threads, the explainer runs ${ex.info.threads || 1}: no ${n}-thread column`);
      ex.dispose();
      continue;
    }
    const tag = methodsMemory.length > 1 ? `${n} thr ${memory}` : `${n} thr`;
    exs.push({ threads: n, memory, tag, ex, loadMs: performance.now() - t, fwd: [], ms: {}, ratio: {} });
    for (const m of list) { exs.at(-1).ms[m] = []; exs.at(-1).ratio[m] = []; }
    log(`methods: ours, depth 'input', memory '${memory}', ${n} thread${n > 1 ? 's' : ''}, load ${f(exs.at(-1).loadMs)} ms ` +
        `(${f(ex.info.memoryBytes / 1048576)} MB heap in use with the state)`);
  }
  if (!exs.length) return;
  const layers = exs[0].ex.info.layers;
  const layer = layers[layers.length - 1].name; // the CAM methods' (and guided-gradcam's) target

  // ---- the same quantity: tfjs's d logit / d input vs ours, on each input -----------------
  log(`\ninput gradient d logit[top] / d input (${exs[0].ex.info.inputWidth}x${exs[0].ex.info.inputHeight}x3, preprocessed ` +
      `input) vs ours on 1 thread, max abs diff / max |ours| (tolerance ${GRAD_TOL}); saliency map = max_ch |g| / max:`);
  // a third input of uniform noise: the bench's two images have flat (clamped or gray)
  // regions whose equal activations tie inside pool windows, and tfjs sends a tie's gradient
  // to the window's last max where we (and torch) send it to the first
  const noise = { name: 'uniform noise', data: new Uint8ClampedArray(images[0].data.length), width: images[0].width,
                  height: images[0].height };
  let seed = 987654321;
  for (let i = 0; i < noise.data.length; i++)
    noise.data[i] = (i & 3) === 3 ? 255 : (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
  const checkImages = [...images, noise];
  const checkTensors = [...tensors, preprocess(noise, man)];
  for (let k = 0; k < checkImages.length; k++) {
    const r = await exs[0].ex.explain(checkImages[k], { topK: 1, method: 'saliency' });
    const cls = r.explanations[0].classIndex;
    const ref = ourInputGradient(exs[0].ex);
    const parts = [];
    for (const o of exs.slice(1)) {
      const rn = await o.ex.explain(checkImages[k], { topK: 1, method: 'saliency' });
      const g = ourInputGradient(o.ex);
      const d = ref && g ? relToMax(g, ref) : maxAbs(rn.explanations[0].heatmap, r.explanations[0].heatmap);
      const same = o.memory === exs[0].memory; // bit-identical expected; compact: information
      if (same && !(d <= GRAD_TOL)) failed = true;
      parts.push(`ours ${o.tag} ${ref && g ? 'gradient' : 'map'} ${e(d)}${d <= GRAD_TOL ? '' : same ? ' FAIL' : ' (differs)'}`);
    }
    if (tfvgg) {
      const t = tfvgg.inputGradient(checkTensors[k], cls);
      if (ref) {
        const st = gradStats(t.grad, ref, GRAD_TOL);
        parts.push(`tfjs gradient ${e(st.maxRel)}${st.maxRel <= GRAD_TOL ? '' : ' DIFFERS'} (L2 ${e(st.l2Rel)}, ` +
                   `${st.beyond}/${st.total} elements beyond ${GRAD_TOL} of max)`);
      }
      const dm = maxAbs(saliencyMap(t.grad), r.explanations[0].heatmap);
      parts.push(`tfjs saliency map ${e(dm)}${dm <= GRAD_TOL ? '' : ' DIFFERS'}`);
    }
    if (!ref) parts.push('(our raw gradient is not readable from this build: maps only)');
    log(`  input '${checkImages[k].name}', class ${cls}: ${parts.join(', ')}`);
  }
  log('  (an input gradient through 13 ReLUs and 5 max-pools is not continuous in the forward\'s rounding: where two ' +
      'values of a pool window, or a pre-activation and 0, are closer than the engines\' float32 rounding differences ' +
      '(our Winograd convs vs tfjs\'s direct ones), a mask or an argmax flips and moves that unit\'s gradient, hence the L2 ' +
      'figure and the count next to the max. Values equal in exact arithmetic (the flat gray image everywhere, the textured ' +
      'one\'s clamped parts) tie in every pool window, and each engine\'s rounding breaks the tie its own way (tfjs\'s ' +
      'MaxPoolGrad also keeps the last max of an exact tie, we and torch the first: the probe above): there the input ' +
      'gradients of two engines need not agree at all.)');

  // ---- timing --------------------------------------------------------------------------------
  const img = images[0];
  const img2 = { data: new Uint8ClampedArray(img.data), width: img.width, height: img.height };
  img2.data[0] ^= 1; // alternate images: every round's first explain runs the forward
  const warm = { smoothgrad: { samples: 2 }, 'integrated-gradients': { steps: 2 } };
  const T = { fwd: [], grad: [] };
  for (let r = 0; r <= runs; r++) {
    const im = r & 1 ? img2 : img;
    const round = [];
    for (const o of exs) {
      const first = await o.ex.explain(im, { topK: 1, method: 'gradcam', layer });
      if (first.forwardReused) throw new Error('bench: the forward was reused');
      const fwd = first.timings.forwardMs;
      const ms = {};
      for (const m of list) {
        const res = await o.ex.explain(im, { topK: 1, method: m, layer, ...(r === 0 ? warm[m] : {}) });
        if (!res.forwardReused) throw new Error(`bench: ${m} did not reuse the forward`);
        ms[m] = res.timings.explainMs;
      }
      round.push([o, fwd, ms]);
    }
    let tf = null;
    if (tfvgg) {
      let t = performance.now();
      tfvgg.forward(tensors[0]);
      const a = performance.now() - t;
      t = performance.now();
      tfvgg.inputGradient(tensors[0], null);
      tf = [a, performance.now() - t];
    }
    log(`  methods round ${r}${r === 0 ? ' (warm-up)' : ''} of ${runs} done, load average ${os.loadavg()[0].toFixed(2)}`);
    if (r === 0) continue;
    for (const [o, fwd, ms] of round) {
      o.fwd.push(fwd);
      for (const m of list) { o.ms[m].push(ms[m]); o.ratio[m].push(ms[m] / fwd); }
    }
    if (tf) { T.fwd.push(tf[0]); T.grad.push(tf[1]); }
  }

  // ---- tables (markdown) -----------------------------------------------------------------------
  const label = (m) => (m === 'smoothgrad' ? 'smoothgrad (25 samples)' : m === 'integrated-gradients' ? 'integrated-gradients (32 steps)' : m);
  const target = (m) => (m === 'saliency' || m === 'guided-backprop' || m === 'guided-gradcam' || m === 'smoothgrad' ||
    m === 'integrated-gradients' ? 'input' : layer);
  log(`\nEach method's cost on one VGG16 forward (224x224, random weights, top class, logit score; ours: explainers of ` +
      `depth 'input'), median of ${runs} runs, ms; × forward = median over the rounds of (method ms / that round's forward ms)`);
  log(`\n| method | target | ${exs.map((o) => `ours ${o.tag} ms | × forward`).join(' | ')} |`);
  log(`|---|---|${exs.map(() => '---:|---:').join('|')}|`);
  log(`| forward alone (resize + preprocess + VGG16) | - | ${exs.map((o) => `${f(median(o.fwd))} | 1.00`).join(' | ')} |`);
  for (const m of list) {
    const b = m === 'saliency' ? '**' : '';
    log(`| ${b}${label(m)}${b} | ${target(m) === 'input' && m === 'guided-gradcam' ? `input (CAM at ${layer})` : target(m)} | ` +
        `${exs.map((o) => `${b}${f(median(o.ms[m]))}${b} | ${b}${f(median(o.ratio[m]), 2)}${b}`).join(' | ')} |`);
  }
  const sal = list.includes('saliency');
  for (const m of ['saliency', 'guided-backprop'])
    if (list.includes(m))
      log(`\n${m} (backward to the input) <= 1.2x the forward: ` + exs.map((o) => {
        const v = median(o.ratio[m]);
        return `${o.tag} ${v.toFixed(2)}x ${v <= 1.2 ? 'met' : 'NOT met'}`;
      }).join(', ') + ' (on this run\'s load)');
  for (const o of peersOurs)
    log(`(the default-depth explainer's forward in the peers' table above, ${o.threads} thr: ${f(median(o.fwd))} ms)`);

  if (tfvgg || sal) {
    log(`\n| engine | threads | forward ms | forward + input gradient ms | input gradient alone ms | × forward |`);
    log('|---|---:|---:|---:|---:|---:|');
    if (sal)
      for (const o of exs) {
        const both = o.fwd.map((v, i) => v + o.ms.saliency[i]);
        log(`| ours (gradcam-wasm, saliency${methodsMemory.length > 1 ? `, ${o.memory}` : ''}) | ${o.threads} | ${f(median(o.fwd))} | ${f(median(both))} | ` +
            `${f(median(o.ms.saliency))} | ${f(median(o.ratio.saliency), 2)} |`);
      }
    if (tfvgg) {
      // tf.grad records the forward on its tape: its backward alone is (tf.grad - forward) per round
      const back = T.grad.map((v, i) => v - T.fwd[i]);
      log(`| tfjs-backend-wasm ${tfenv.wasmVersion}: tf.grad | ${tfenv.threads} | ${f(median(T.fwd))} | ${f(median(T.grad))} | ` +
          `${f(median(back))}* | ${f(median(back.map((v, i) => v / T.fwd[i])), 2)}* |`);
    }
    log('\nours: forward = timings.forwardMs, input gradient = saliency\'s timings.explainMs on the reused forward; ' +
        'forward + input gradient = their sum per round.');
    if (tfvgg)
      log('* tfjs: tf.grad runs the forward on its tape, so its backward alone = tf.grad - forward of the same round; ' +
          'one thread (WASM_HAS_MULTITHREAD_SUPPORT=false); under the tape tfjs runs each conv unfused (tf.conv2d + add + ' +
          'relu: tfjs-core fuses only linear activations while recording a gradient), so that forward is not quite the ' +
          'timed tf.fused.conv2d one.');
  }
  log('  every run: ' + exs.map((o) => `ours ${o.tag} forward ${o.fwd.map((v) => f(v)).join(' ')}` +
    (sal ? ` | saliency ${o.ms.saliency.map((v) => f(v)).join(' ')}` : '')).join('; ') +
    (tfvgg ? `; tfjs forward ${T.fwd.map((v) => f(v)).join(' ')} | tf.grad ${T.grad.map((v) => f(v)).join(' ')}` : ''));
  log(`  load average at the end: ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}`);
  for (const o of exs) o.ex.dispose();
}

// ---- main ----------------------------------------------------------------------------------
if (onlyMemoryRows) {
  const gcamFile = weightsArg ? path.resolve(weightsArg) : path.join(cache, 'vgg16-seed1.gcam');
  if (!fs.existsSync(gcamFile)) throw new Error(`${gcamFile}: no such file (--only-memory-rows needs --weights or a cache)`);
  log(`bench_peers --only-memory-rows: node ${process.version}, ${os.cpus().length} cores, load average ` +
      `${os.loadavg().map((v) => v.toFixed(2)).join(' ')}`);
  await memoryTable(gcamFile, makeImages(224, 224));
  process.exit(0);
}
ensurePeers();
const { gcam, dir, sha } = ensureModels();
const man = JSON.parse(fs.readFileSync(path.join(dir, 'tfjs/manifest.json'), 'utf8'));
const [camH, camW, camC] = man.cam_hwc;

log(`bench_peers: node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0].model}), ` +
    `load average ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}`);
log(`weights ${gcam} (sha256 ${sha.slice(0, 12)}), median of ${runs} runs after 1 warm-up, ms`);

const { createExplainer } = await import('../web/index.js');
let t0;
const oursAll = []; // one explainer per thread count, [0] = 1 thread: the reference
for (const n of threadCounts) {
  t0 = performance.now();
  const ex = await createExplainer({ weights: gcam, simd: true, threads: n, worker: false });
  const loadMs = performance.now() - t0;
  const got = ex.info.threads || 1;
  if (got !== n) {
    log(`ours: asked for ${n} threads, the explainer runs ${got} (no threaded build?): no ${n}-thread row`);
    ex.dispose();
    continue;
  }
  oursAll.push({ threads: n, ex, loadMs });
}
const ours = oursAll[0].ex;
if (ours.info.inputWidth !== man.input_hw[1] || ours.info.inputHeight !== man.input_hw[0])
  throw new Error('bench: our explainer and the peers\' manifest disagree on the input size');
const images = makeImages(ours.info.inputWidth, ours.info.inputHeight);
const tensors = images.map((img) => preprocess(img, man));

let tfenv = null, tfvgg = null, tfLoad = null;
if (withTfjs) {
  t0 = performance.now();
  const { loadTfjs, TfjsVgg } = await import('./peers/tfjs_vgg.mjs');
  tfenv = await loadTfjs();
  tfvgg = new TfjsVgg(tfenv, path.join(dir, 'tfjs'));
  tfLoad = performance.now() - t0;
}
const orts = [];
if (withOrt) {
  for (const n of threadCounts) {
    t0 = performance.now();
    const c = await OrtChild.start(dir, n);
    c.loadMs = performance.now() - t0;
    orts.push(c);
  }
}
for (const o of oursAll)
  log(`ours: gradcam-wasm ${o.threads > 1 ? 'threaded SIMD build (web/dist/gcam-simd-threads.wasm)' : 'SIMD build (web/dist/gcam-simd.wasm)'}, ` +
      `${o.threads} thread${o.threads > 1 ? 's' : ''} (info.threads ${o.ex.info.threads}), load ${f(o.loadMs)} ms`);
if (tfenv)
  log(`tfjs: @tensorflow/tfjs ${tfenv.version}, tfjs-backend-wasm ${tfenv.wasmVersion}, backend ${tfenv.tf.getBackend()}, ` +
      `SIMD ${tfenv.simd}, threads ${tfenv.threads} (WASM_HAS_MULTITHREAD_SUPPORT=false), load ${f(tfLoad)} ms`);
for (const c of orts)
  log(`ORT:  onnxruntime-web ${c.ready.versions.web} (wasm EP, ort-wasm-simd-threaded), numThreads ${c.ready.numThreads}, ` +
      `2 sessions load ${f(c.loadMs)} ms (child process ${c.proc.pid})`);

// ---- agreement: the same logits and maps, on each input ------------------------------------
let failed = false;
const agree = [];
const jobs = [];
for (let k = 0; k < images.length; k++) {
  const img = images[k];
  const first = await ours.explain(img, { topK: 2 });
  const classes = first.predictions.map((p) => p.index);
  const mine = await ours.explain(img, { classIndex: classes });
  const row = { name: img.name, classes, ours: { logits: mine.logits, cams: mine.explanations.map((x) => x.heatmap) } };
  row.oursN = [];
  for (const o of oursAll.slice(1)) {
    const r = await o.ex.explain(img, { classIndex: classes });
    row.oursN.push({ threads: o.threads, logits: r.logits, cams: r.explanations.map((x) => x.heatmap) });
  }
  if (tfvgg) {
    row.tfjs = { logits: tfvgg.forward(tensors[k]), cams: [], grads: [] };
    for (const c of classes) {
      const r = tfvgg.gradcam(tensors[k], c, true);
      row.tfjs.cams.push(r.cam);
      row.tfjs.grads.push(r.grad);
      row.tfjs.gradLogits = r.logits;
    }
  }
  row.ort = [];
  for (const c of orts) {
    await c.call({ op: 'input', x: tensors[k], h: img.height, w: img.width });
    const fwd = await c.call({ op: 'run', kind: 'forward', outputs: true });
    const o = { threads: c.threads, logits: fwd.logits, cams: [], grads: [] };
    for (const cls of classes) {
      const r = await c.call({ op: 'run', kind: 'gradcam', classIndex: cls, outputs: true });
      o.cams.push(r.cam);
      o.grads.push(nchwToHwc(r.grad, camC, camH, camW));
      o.gradLogits = r.logits;
    }
    const top = await c.call({ op: 'run', kind: 'gradcam', classIndex: -1, outputs: true });
    o.topCamDiff = maxAbs(top.cam, o.cams[0]);
    row.ort.push(o);
  }
  const file = path.join(cache, `input-${k}.f32`);
  fs.writeFileSync(file, Buffer.from(tensors[k].buffer));
  jobs.push({ file, classes });
  agree.push(row);
}
let torch = null;
if (withTorch) {
  const job = path.join(cache, 'torchref-job.json');
  const out = path.join(cache, 'torchref-out.json');
  fs.writeFileSync(job, JSON.stringify({ inputs: jobs }));
  t0 = performance.now();
  execFileSync(PY, [path.join(PEERS, 'make_models.py'), 'torchref', gcam, job, out], { stdio: 'inherit' });
  torch = JSON.parse(fs.readFileSync(out, 'utf8'));
  log(`torch ${torch.torch} reference (autograd, CPU, 1 thread): ${f((performance.now() - t0) / 1000, 1)} s`);
}

// ---- timing --------------------------------------------------------------------------------
const T = { tfFwd: [], tfCam: [], tfCpu: [] };
for (const c of [...oursAll, ...orts]) { c.fwd = []; c.cam = []; c.cpu = []; }
const img = images[0];
const img2 = { data: new Uint8ClampedArray(img.data), width: img.width, height: img.height };
img2.data[0] ^= 1; // a one-pixel change forces our explainer's forward on every run
for (const c of orts) await c.call({ op: 'input', x: tensors[0], h: img.height, w: img.width });
const cpuMs = (c0) => { const c = process.cpuUsage(c0); return (c.user + c.system) / 1000; };
for (let r = 0; r <= runs; r++) {
  const oursMs = [];
  for (const o of oursAll) {
    const c0 = process.cpuUsage();
    t0 = performance.now();
    const res = await o.ex.explain(r & 1 ? img2 : img, { topK: 1 });
    const ms = performance.now() - t0;
    if (res.forwardReused) throw new Error('bench: our forward was reused');
    oursMs.push([res.timings.forwardMs, ms, cpuMs(c0) / ms]);
  }
  let tf1 = null, tf2 = null, tfCpu = null;
  if (tfvgg) {
    t0 = performance.now();
    tfvgg.forward(tensors[0]);
    tf1 = performance.now() - t0;
    const c0 = process.cpuUsage();
    t0 = performance.now();
    tfvgg.gradcam(tensors[0], null, false);
    tf2 = performance.now() - t0;
    tfCpu = cpuMs(c0) / tf2;
  }
  const ortMs = [];
  for (const c of orts) {
    const a = await c.call({ op: 'run', kind: 'forward', outputs: false });
    const b = await c.call({ op: 'run', kind: 'gradcam', classIndex: -1, outputs: false });
    ortMs.push([a.ms, b.ms, b.cpuMs / b.ms]);
  }
  if (r === 0) continue; // warm-up
  const push = (c, [fw, gc, cpu]) => { c.fwd.push(fw); c.cam.push(gc); c.cpu.push(cpu); };
  oursAll.forEach((o, i) => push(o, oursMs[i]));
  if (tfvgg) { T.tfFwd.push(tf1); T.tfCam.push(tf2); T.tfCpu.push(tfCpu); }
  orts.forEach((c, i) => push(c, ortMs[i]));
}
const loadEnd = os.loadavg();

// ratio: against ours at the same thread count (or at 1 thread when we have no such row)
const oursAt = (n) => oursAll.find((o) => o.threads === n) || oursAll[0];
const rows = oursAll.map((o) => [`ours (gradcam-wasm SIMD)`, o.threads, o.fwd, o.cam, o.cpu, o]);
if (tfvgg) rows.push([`tfjs-backend-wasm ${tfenv.wasmVersion}`, tfenv.threads, T.tfFwd, T.tfCam, T.tfCpu, oursAt(tfenv.threads)]);
for (const c of orts) rows.push([`onnxruntime-web ${c.ready.versions.web}`, c.threads, c.fwd, c.cam, c.cpu, oursAt(c.threads)]);
log(`\nVGG16 224x224, batch 1, input '${img.name}' (${img.width}x${img.height} RGBA; peers get the preprocessed tensor)`);
log(`  ${'engine'.padEnd(30)}${'threads'.padStart(8)}${'forward'.padStart(10)}${'ratio'.padStart(7)}` +
    `${'fwd+Grad-CAM'.padStart(14)}${'ratio'.padStart(7)}${'CPU/wall'.padStart(10)}${'vs ours at'.padStart(12)}`);
for (const [name, th, fw, gc, cpu, ref] of rows) {
  const [mf, mg] = [median(fw), median(gc)];
  log(`  ${name.padEnd(30)}${String(th).padStart(8)}${f(mf).padStart(10)}${(mf / median(ref.fwd)).toFixed(2).padStart(7)}` +
      `${f(mg).padStart(14)}${(mg / median(ref.cam)).toFixed(2).padStart(7)}${median(cpu).toFixed(2).padStart(10)}` +
      `${(`${ref.threads} thr`).padStart(12)}`);
}
log('  ratio = peer ms / our ms at the same thread count (above 1: we are faster); CPU/wall = process CPU time / wall time of ' +
    'the fwd+Grad-CAM call (about 1 for one busy thread, up to 2 when two threads work).');
log('  ORT\'s Grad-CAM is a hand-written backward exported as an ONNX graph (ORT has no autograd).');
const samples = oursAll.map((o) => [`ours${o.threads}`, o.fwd, o.cam]);
if (tfvgg) samples.push(['tfjs', T.tfFwd, T.tfCam]);
for (const c of orts) samples.push([`ORT${c.threads}`, c.fwd, c.cam]);
log('  every run (forward | fwd+Grad-CAM): ' + samples.map(([n, a, b]) =>
  `${n} ${a.map((v) => f(v)).join(' ')} | ${b.map((v) => f(v)).join(' ')}`).join('; '));
log(`  load average at the end: ${loadEnd.map((v) => v.toFixed(2)).join(' ')}`);

// ---- agreement report ----------------------------------------------------------------------
log(`\nagreement (tolerances: logits ${LOGIT_TOL} relative to max |logit|, maps ${CAM_TOL} max abs on the normalized ${camW}x${camH} map)`);
const check = (what, v, tol, fatal) => {
  const ok = v <= tol;
  if (!ok && fatal) failed = true;
  return `${what} ${e(v)}${ok ? '' : fatal ? ' FAIL' : ' DIFFERS'}`;
};
agree.forEach((row, k) => {
  const tr = torch && torch.inputs[k];
  log(`  input '${row.name}': classes ${row.classes.join(', ')} (top 2 by our logits)` +
      (tr ? `; pool5 windows: ${tr.pool5.windows}, all-zero ${tr.pool5.allZero}, tie at a positive max ` +
            `${tr.pool5.positiveTies}, 0 < max <= FLT_MIN ${tr.pool5.maxBelowFltMin}` : ''));
  const parts = [];
  if (tr) parts.push(check('ours/torch', logitsRel(row.ours.logits, tr.logits), LOGIT_TOL, true));
  if (row.tfjs) parts.push(check('tfjs/ours', logitsRel(row.tfjs.logits, row.ours.logits), LOGIT_TOL, true));
  for (const o of row.ort) parts.push(check(`ORT${o.threads}/ours`, logitsRel(o.logits, row.ours.logits), LOGIT_TOL, true));
  for (const o of row.oursN) parts.push(check(`ours${o.threads}/ours1`, logitsRel(o.logits, row.ours.logits), LOGIT_TOL, true));
  log(`    logits: ${parts.join(', ')}`);
  row.classes.forEach((c, j) => {
    const p = [];
    const tcam = tr && tr.cams[String(c)];
    if (tcam) p.push(check('ours/torch', maxAbs(row.ours.cams[j], tcam), CAM_TOL, true));
    if (row.tfjs) {
      p.push(check('tfjs/ours', maxAbs(row.tfjs.cams[j], row.ours.cams[j]), CAM_TOL, false));
      if (tcam) p.push(check('tfjs/torch', maxAbs(row.tfjs.cams[j], tcam), CAM_TOL, false));
      if (tcam) p.push(check('tfjs/(torch with the gradient of windows of max <= FLT_MIN dropped)',
                             maxAbs(row.tfjs.cams[j], tr.camsDropped[String(c)]), CAM_TOL, false));
    }
    for (const o of row.ort) p.push(check(`ORT${o.threads}/ours`, maxAbs(o.cams[j], row.ours.cams[j]), CAM_TOL, true));
    for (const o of row.oursN) p.push(check(`ours${o.threads}/ours1`, maxAbs(o.cams[j], row.ours.cams[j]), CAM_TOL, true));
    if (tr) p.push(check('ONNX graph/torch autograd', tr.handMaxAbsDiff[String(c)], CAM_TOL, true));
    log(`    map of class ${c}: ${p.join(', ')}`);
    if (tr) {
      const tg = new Float32Array(fs.readFileSync(tr.grads[String(c)]).buffer.slice(0));
      const g = [];
      if (row.tfjs) g.push(['tfjs', gradCompare(row.tfjs.grads[j], tg, camH, camW, camC)]);
      for (const o of row.ort) g.push([`ORT${o.threads}`, gradCompare(o.grads[j], tg, camH, camW, camC)]);
      log(`      d logit / d block5_conv3 vs torch: ` + g.map(([n, s]) =>
        `${n} ${s.differ}/${s.total} elements differ (max ${e(s.maxRel)} of max|g|), 2x2 window sums ${e(s.winRel)}`).join('; '));
    }
  });
  for (const o of row.ort)
    if (o.topCamDiff > 0) { log(`    ORT${o.threads}: class_index -1 (in-graph argmax) map differs from class ${row.classes[0]}'s by ${e(o.topCamDiff)} FAIL`); failed = true; }
});

if (tfenv) {
  const { maxPoolGradProbe } = await import('./peers/tfjs_vgg.mjs');
  log('\ntfjs MaxPoolGrad, d(sum of maxPool(x))/dx, x 4x4 = 3 windows with a positive max + the window below');
  log('(torch and our core: all of dy to the first max; total = sum of the whole gradient, 4 when nothing is lost):');
  const wasmRows = await maxPoolGradProbe(tfenv.tf, 'wasm');
  const cpuRows = await maxPoolGradProbe(tfenv.tf, 'cpu');
  const show = (r) => `${JSON.stringify(r.got)} total ${r.total}${r.same ? '' : ' (differs)'}`;
  wasmRows.forEach((w, i) => {
    log(`  window ${JSON.stringify(w.window).padEnd(17)} torch ${JSON.stringify(w.want)}  tfjs wasm ${show(w)}  tfjs cpu ${show(cpuRows[i])}`);
  });
}

for (const o of oursAll) o.ex.dispose();
for (const c of orts) await c.stop();
if (withMethods) await methodsTable({ gcam, images, tensors, tfvgg, tfenv, peersOurs: oursAll });
if (tfvgg) tfvgg.dispose();
if (failed) {
  log('\nbench_peers: FAILED: an engine computes something else (see FAIL above)');
  process.exit(1);
}
log('\nbench_peers: all logits and maps checked');
if (memoryRows) await memoryTable(gcam, images);
