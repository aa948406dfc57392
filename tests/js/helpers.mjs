// helpers.mjs: what the JS tests share: paths, the native CLI as the reference, fixture I/O.
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const FIXTURES = path.join(ROOT, 'tests/fixtures/vgg_small');
export const DIST = path.join(ROOT, 'web/dist');
/** the native CLI (the reference); GCAM_CLI overrides the default build/gcam */
export const CLI = process.env.GCAM_CLI ? path.resolve(process.env.GCAM_CLI) : path.join(ROOT, 'build/gcam');

const run = promisify(execFile);

export function requireBuilds() {
  for (const f of ['gcam-simd.mjs', 'gcam-simd.wasm', 'gcam-scalar.mjs', 'gcam-scalar.wasm'])
    if (!fs.existsSync(path.join(DIST, f)))
      throw new Error(`web/dist/${f} is missing: run bash scripts/build.sh wasm first`);
}

export function requireCli() {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: build the native CLI first or set GCAM_CLI`);
}

/** float32 array from a raw little-endian file */
export function readF32(file) {
  const b = fs.readFileSync(file);
  return new Float32Array(new Uint8Array(b).buffer);
}

/** `gcam explain ... --json` parsed, plus the overlay PNG's bytes when asked. */
export async function nativeExplain({ weights, image, classIndex, topK, score, overlay }) {
  const args = ['explain', '--weights', weights, '--image', image, '--json'];
  if (classIndex !== undefined) args.push('--class', String(classIndex));
  if (topK !== undefined) args.push('--top-k', String(topK));
  if (score) args.push('--score', score);
  let overlayFile;
  if (overlay) {
    overlayFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gcam-cli-')), 'overlay.png');
    args.push('--overlay', overlayFile);
  }
  const t0 = performance.now();
  const { stdout } = await run(CLI, args, { maxBuffer: 64 << 20 });
  const ms = performance.now() - t0;
  const json = JSON.parse(stdout);
  if (overlayFile) {
    json.overlayPng = fs.readFileSync(overlayFile);
    fs.rmSync(path.dirname(overlayFile), { recursive: true, force: true });
  }
  json.ms = ms;
  return json;
}

/** max |a-b| / max(|b|, floor) */
export function maxRelErr(a, b, floor = 1e-6) {
  let worst = 0;
  for (let i = 0; i < b.length; i++) {
    const e = Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]), floor);
    if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : e;
  }
  return worst;
}

export function maxAbsErr(a, b) {
  let worst = 0;
  for (let i = 0; i < b.length; i++) {
    const e = Math.abs(a[i] - b[i]);
    if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : e;
  }
  return worst;
}

/** the number of differing bytes between two RGBA buffers */
export function countDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

/** A seeded random VGG written once in the temp folder by weights/make_random.py with `args`
 * (`name` says which: one name for one set of arguments). The cached file's name carries a
 * hash of the scripts that write it, so a change of format makes a new one. */
export async function randomWeights(name, args) {
  const writer = crypto.createHash('sha256');
  for (const f of ['weights/make_random.py', 'weights/gcamfile.py']) writer.update(fs.readFileSync(path.join(ROOT, f)));
  const file = path.join(os.tmpdir(), `gcam-${name}-${writer.digest('hex').slice(0, 12)}.gcam`);
  if (!fs.existsSync(file)) {
    const tmp = `${file}.${process.pid}.part`;
    await run('/usr/bin/python3', [path.join(ROOT, 'weights/make_random.py'), ...args, tmp], { maxBuffer: 16 << 20 });
    fs.renameSync(tmp, file);
  }
  return file;
}

/** The random-weight VGG16 for the full-size checks: GCAM_VGG16_WEIGHTS, or made once in
 * the temp folder (553 MB, seed 1); `dtype` f16 or int8: the same seed in that storage type. */
export async function randomVgg16(dtype = 'f32') {
  if (dtype === 'f32' && process.env.GCAM_VGG16_WEIGHTS) return path.resolve(process.env.GCAM_VGG16_WEIGHTS);
  const tag = dtype === 'f32' ? '' : `-${dtype}`;
  return randomWeights(`vgg16-random-seed1${tag}`, ['--arch', 'vgg16', '--seed', '1', '--labels', '--dtype', dtype]);
}

/** A seeded RGBA test image (opaque), { data, width, height }. */
export function testImage(width, height, seed = 1) {
  const data = new Uint8ClampedArray(width * height * 4);
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = (i & 3) === 3 ? 255 : s >>> 24;
  }
  return { data, width, height };
}

/** global.gc without --expose-gc on the command line (node --test starts the files itself). */
export function exposeGc() {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc');
}

/** The wasm heap's size in bytes of an explainer running in this thread (test-only access). */
export function heapBytes(explainer) {
  const M = explainer._engine.M;
  return (M.wasmMemory ? M.wasmMemory.buffer : M.HEAPU8.buffer).byteLength;
}
