// ort_child.mjs: onnxruntime-web (wasm backend) in a child process forked by
// bench/bench_peers.mjs, one child per thread count: ORT fixes ort.env.wasm.numThreads when
// its wasm starts, once per process.
//
//   fork('ort_child.mjs', [MODEL_DIR, NUM_THREADS], { serialization: 'advanced' })
//
// Messages in: { op: 'input', x: Float32Array (H, W, 3) }, { op: 'run', kind: 'forward' |
// 'gradcam', classIndex (-1 = top class), outputs: bool }, { op: 'exit' }.
// Out: { op: 'ready', versions, numThreads }, { op: 'result', ms, cpuMs, logits?, cam?, grad? },
// { op: 'error', message }. `ms` is session.run() alone, timed here: no IPC in it.
import path from 'node:path';
import { createRequire } from 'node:module';

const PEERS = path.dirname(new URL(import.meta.url).pathname);
const require = createRequire(path.join(PEERS, 'package.json'));
const [dir, threadsArg] = process.argv.slice(2);

let ort;
let forward;
let gradcam;
let input;

function nchw(x, h, w) {
  const out = new Float32Array(3 * h * w);
  for (let i = 0; i < h * w; i++) for (let c = 0; c < 3; c++) out[c * h * w + i] = x[i * 3 + c];
  return out;
}

async function init() {
  ort = require('onnxruntime-web');
  ort.env.wasm.numThreads = Number(threadsArg);
  ort.env.wasm.wasmPaths = path.join(PEERS, 'node_modules/onnxruntime-web/dist/');
  const opts = { executionProviders: ['wasm'], graphOptimizationLevel: 'all' };
  forward = await ort.InferenceSession.create(path.join(dir, 'vgg_forward.onnx'), opts);
  gradcam = await ort.InferenceSession.create(path.join(dir, 'vgg_gradcam.onnx'), opts);
  process.send({ op: 'ready', versions: ort.env.versions, numThreads: ort.env.wasm.numThreads });
}

async function run(msg) {
  const feeds = { input };
  const sess = msg.kind === 'forward' ? forward : gradcam;
  if (msg.kind === 'gradcam') feeds.class_index = new ort.Tensor('int64', BigInt64Array.from([BigInt(msg.classIndex)]), [1]);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await sess.run(feeds);
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0); // all the process's threads: ORT's pool included
  const out = { op: 'result', ms, cpuMs: (c.user + c.system) / 1000 };
  if (msg.outputs) {
    out.logits = r.logits.data.slice();
    if (r.cam) out.cam = r.cam.data.slice();
    if (r.grad) out.grad = r.grad.data.slice(); // NCHW
  }
  for (const t of Object.values(r)) t.dispose?.();
  process.send(out);
}

process.on('message', (msg) => {
  (async () => {
    if (msg.op === 'input') {
      input = new ort.Tensor('float32', nchw(msg.x, msg.h, msg.w), [1, 3, msg.h, msg.w]);
      process.send({ op: 'ok' });
    } else if (msg.op === 'run') {
      await run(msg);
    } else if (msg.op === 'exit') {
      await forward.release();
      await gradcam.release();
      process.disconnect();
      process.exit(0);
    }
  })().catch((e) => process.send({ op: 'error', message: String(e && e.stack || e) }));
});

// the parent died or finished without saying 'exit': do not linger
process.on('disconnect', () => process.exit(0));

init().catch((e) => {
  process.send({ op: 'error', message: String(e && e.stack || e) });
  process.exit(1);
});
