// builds.test.mjs: the two WebAssembly builds are what they claim to be, and the right one
// is picked: the scalar build holds no SIMD instruction (so engines without SIMD can run it),
// the SIMD build does, and feature detection falls back to the scalar build.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createExplainer, simdSupported } from '../../web/index.js';
import { DIST, FIXTURES, requireBuilds } from './helpers.mjs';

requireBuilds();

function simdInstructions(file) {
  // binaryen's disassembler (Debian's emscripten depends on binaryen)
  const text = execFileSync('wasm-dis', [file], { maxBuffer: 1 << 30, encoding: 'utf8' });
  return (text.match(/\bv128\b|\b[if](8x16|16x8|32x4|64x2)\./g) || []).length;
}

test('the scalar build has no SIMD instruction, the SIMD build has many', () => {
  assert.equal(simdInstructions(path.join(DIST, 'gcam-scalar.wasm')), 0);
  assert.ok(simdInstructions(path.join(DIST, 'gcam-simd.wasm')) > 100);
});

test('the scalar build validates as a plain module, both builds compile', async () => {
  for (const f of ['gcam-scalar.wasm', 'gcam-simd.wasm'])
    assert.ok(WebAssembly.validate(fs.readFileSync(path.join(DIST, f))), f);
});

test('without SIMD support the scalar build is chosen', async () => {
  const weights = path.join(FIXTURES, 'model.gcam');
  const withSimd = await createExplainer({ weights });
  assert.equal(withSimd.info.simd, true);
  const img = await withSimd.decodeImage(fs.readFileSync(path.join(FIXTURES, 'img0.png')));
  const a = await withSimd.explain(img);
  withSimd.dispose();

  const validate = WebAssembly.validate;
  // an engine that refuses SIMD modules
  WebAssembly.validate = (bytes) => {
    const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    for (let i = 0; i + 1 < u8.length; i++) if (u8[i] === 0xfd && u8[i + 1] === 0x11) return false;
    return validate(bytes);
  };
  let noSimd;
  try {
    assert.equal(simdSupported(), false);
    noSimd = await createExplainer({ weights });
  } finally {
    WebAssembly.validate = validate;
  }
  assert.equal(noSimd.info.simd, false);
  const b = await noSimd.explain(img);
  noSimd.dispose();
  assert.deepEqual(b.predictions.map((p) => p.index), a.predictions.map((p) => p.index));
});
