// tfjs_vgg.mjs: the gcam VGG written with TensorFlow.js ops on @tensorflow/tfjs-backend-wasm,
// and its Grad-CAM by the Keras recipe (gradient of the class logit w.r.t. the last conv's
// output, by tf.grad; channel weights = spatial mean; ReLU; divided by the max), and the
// gradient of the class logit w.r.t. the input (saliency), by tf.grad too.
//
// Weights: the raw float32 files make_models.py writes (HWIO convs, (IN, OUT) dense with
// dense0's rows in HWC order), which is NHWC TensorFlow's own layout: no transposes.
// Convs are tf.fused.conv2d (conv + bias + ReLU in one kernel, as tfjs-layers runs a Conv2D
// with a ReLU), then tf.maxPool; the dense head, the part that is differentiated, is plain
// tf.matMul + tf.add + tf.relu so tf.grad uses tfjs's own gradients of those kernels.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const PEERS = path.dirname(new URL(import.meta.url).pathname);
const require = createRequire(path.join(PEERS, 'package.json'));

/** Load tfjs (union package: its Node bundle registers tfjs-core's gradients) on the wasm
 * backend, single-threaded, with the .wasm files read from the installed package. */
export async function loadTfjs() {
  const tf = require('@tensorflow/tfjs');
  const wasm = require('@tensorflow/tfjs-backend-wasm');
  const dist = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + '/';
  // the threaded build needs worker files and SharedArrayBuffer; our build is 1 thread too
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  wasm.setWasmPaths(dist);
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs: the wasm backend did not initialise');
  await tf.ready();
  return {
    tf,
    wasm,
    simd: await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'),
    threads: wasm.getThreadsCount(),
    version: tf.version.tfjs,
    wasmVersion: wasm.version_wasm,
  };
}

export class TfjsVgg {
  /** dir: make_models.py's tfjs/ folder. */
  constructor(env, dir) {
    const { tf } = env;
    this.tf = tf;
    const man = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    this.manifest = man;
    this.w = {};
    for (const t of man.tensors) {
      const buf = fs.readFileSync(path.join(dir, t.file));
      const n = t.shape.reduce((a, b) => a * b, 1);
      if (buf.byteLength !== 4 * n) throw new Error(`tfjs weights: ${t.file} has ${buf.byteLength} bytes, expected ${4 * n}`);
      const f32 = new Float32Array(buf.buffer, buf.byteOffset, n);
      this.w[t.name] = tf.tensor(f32, t.shape, 'float32');
    }
    this.nConv = man.pools.length;
    this.nDense = man.tensors.filter((t) => /^dense\d+\.weight$/.test(t.name)).length;
    this.pools = man.pools;
    this.inputHW = man.input_hw;
  }

  /** (H, W, 3) preprocessed input -> the last conv's post-ReLU output, (1, h, w, C) */
  features(x) {
    const tf = this.tf;
    let a = x;
    for (let i = 0; i < this.nConv; i++) {
      a = tf.fused.conv2d({ x: a, filter: this.w[`conv${i}.weight`], strides: 1, pad: 'same',
                            bias: this.w[`conv${i}.bias`], activation: 'relu' });
      if (i < this.nConv - 1 && this.pools[i]) a = tf.maxPool(a, 2, 2, 'valid');
    }
    return a;
  }

  /** the last conv's output -> logits (1, classes) */
  head(a) {
    const tf = this.tf;
    let v = this.pools[this.nConv - 1] ? tf.maxPool(a, 2, 2, 'valid') : a;
    v = tf.reshape(v, [1, -1]); // NHWC flatten = the file's HWC rows
    for (let j = 0; j < this.nDense; j++) {
      v = tf.add(tf.matMul(v, this.w[`dense${j}.weight`]), this.w[`dense${j}.bias`]);
      if (j < this.nDense - 1) v = tf.relu(v);
    }
    return v;
  }

  input(xHWC) {
    const [h, w] = this.inputHW;
    return this.tf.tensor4d(xHWC, [1, h, w, 3]);
  }

  /** -> logits (Float32Array) */
  forward(xHWC) {
    const tf = this.tf;
    const out = tf.tidy(() => this.head(this.features(this.input(xHWC))));
    const logits = out.dataSync().slice();
    out.dispose();
    return logits;
  }

  /** Grad-CAM of classIndex (the top class when null), Keras recipe.
   * -> { logits, classIndex, cam (h*w, normalized), grad (h*w*C, NHWC) when wantGrad } */
  gradcam(xHWC, classIndex = null, wantGrad = false) {
    const tf = this.tf;
    let logitsT = null;
    let cls = classIndex;
    const res = tf.tidy(() => {
      const a = this.features(this.input(xHWC));
      const score = (act) => {
        const l = this.head(act);
        logitsT = tf.keep(l);
        if (cls === null) cls = tf.argMax(l, 1).dataSync()[0];
        return tf.squeeze(tf.slice(l, [0, cls], [1, 1]));
      };
      const g = tf.grad(score)(a);
      const weights = tf.mean(g, [1, 2], true);                 // (1, 1, 1, C)
      const cam = tf.relu(tf.sum(tf.mul(a, weights), 3));       // (1, h, w)
      const mx = tf.max(cam);
      const norm = tf.div(cam, tf.where(tf.greater(mx, 0), mx, tf.onesLike(mx)));
      return wantGrad ? [norm, g] : [norm];
    });
    const cam = res[0].dataSync().slice();
    const grad = wantGrad ? res[1].dataSync().slice() : null;
    const logits = logitsT.dataSync().slice();
    for (const t of res) t.dispose();
    logitsT.dispose();
    return { logits, classIndex: cls, cam, grad };
  }

  /** The vanilla gradient (saliency): tf.grad of classIndex's logit (the top class when null)
   * w.r.t. the preprocessed input, read back. Under a gradient tape tfjs-core does not fuse a
   * conv with a ReLU (shouldFuse: only linear activations are fused while a gradient is
   * recorded), so the forward inside tf.grad runs tf.conv2d + add + relu, and the backward
   * calls only the gradients on the path to x (Conv2DBackpropInput, no filter gradients).
   * -> { logits, classIndex, grad (H*W*3, HWC, the input's channel order) } */
  inputGradient(xHWC, classIndex = null) {
    const tf = this.tf;
    let logitsT = null;
    let cls = classIndex;
    const g = tf.tidy(() => {
      const score = (x) => {
        const l = this.head(this.features(x));
        logitsT = tf.keep(l);
        if (cls === null) cls = tf.argMax(l, 1).dataSync()[0];
        return tf.squeeze(tf.slice(l, [0, cls], [1, 1]));
      };
      return tf.grad(score)(this.input(xHWC));
    });
    const grad = g.dataSync().slice();
    const logits = logitsT.dataSync().slice();
    g.dispose();
    logitsT.dispose();
    return { logits, classIndex: cls, grad };
  }

  dispose() {
    for (const t of Object.values(this.w)) t.dispose();
    this.w = {};
  }
}

/** tfjs's 2x2 MaxPoolGrad, d(sum of maxPool(x))/dx, on a 4x4 image of four windows: three
 * with a clear positive max, the fourth (bottom right) the case under test. Next to it, what
 * torch (and our core) give: all of dy to the window's first max, in the order (0,0), (0,1),
 * (1,0), (1,1). -> [{ window, got (4), want (4), total (sum of the whole gradient; 4 when no
 * window's gradient is lost) }] */
export async function maxPoolGradProbe(tf, backend) {
  const cases = [[0, 0, 0, 0], [1, 1, 0, 0], [0, 2, 2, 0], [-4, -3, -2, -1], [0, 0, 1e-39, 0], [0, 0, 2e-38, 0]];
  const prev = tf.getBackend();
  await tf.setBackend(backend);
  const rows = cases.map((v) => {
    const x = new Float32Array(16);
    for (let y = 0; y < 4; y++) for (let c = 0; c < 4; c++) x[y * 4 + c] = 1 + (y % 2) * 2 + (c % 2); // max at (1,1)
    const at = [10, 11, 14, 15]; // the bottom-right window, in window order
    at.forEach((i, k) => { x[i] = v[k]; });
    const g = tf.tidy(() => tf.grad((t) => tf.sum(tf.maxPool(t, 2, 2, 'valid')))(tf.tensor4d(x, [1, 4, 4, 1])).dataSync().slice());
    const w = Float32Array.from(v);
    let first = 0;
    for (let i = 1; i < 4; i++) if (w[i] > w[first]) first = i;
    const want = [0, 0, 0, 0];
    want[first] = 1;
    const got = at.map((i) => g[i]);
    const total = g.reduce((a, b) => a + b, 0);
    return { window: v, got, want, total, same: total === 4 && want.every((u, i) => u === got[i]) };
  });
  await tf.setBackend(prev);
  return rows;
}
