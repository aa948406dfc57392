// native_match.test.mjs: the WebAssembly builds (SIMD and scalar) give the native CLI's
// answers: identical top-5, logits and probabilities within 1e-5 relative, heatmaps within
// 1e-5 absolute, identical overlay pixels. On the core's fixture models (caffe/f32 and
// torch/f16 with CHW rows) and on a random-weight VGG16 (full size, 553 MB).
// Also checks the wasm against the float64 torch oracle's fixtures, independently of C.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createExplainer } from '../../web/index.js';
import {
  FIXTURES, ROOT, requireBuilds, requireCli, nativeExplain, maxRelErr, maxAbsErr, countDiff, readF32,
  randomVgg16,
} from './helpers.mjs';

requireBuilds();
requireCli();

const LOGIT_REL = 1e-5;
const HEATMAP_ABS = 1e-5;

/** Run one image through the CLI and the explainer with the same request; compare. */
async function compare(ex, weights, image, score, topK) {
  const nat = await nativeExplain({ weights, image, topK, score, overlay: true });
  const img = await ex.decodeImage(fs.readFileSync(image));
  const classes = nat.explanations.map((e) => e.class);
  const r = await ex.explain(img, { classIndex: classes, topK: nat.predictions.length, score });

  assert.deepEqual(r.predictions.map((p) => p.index), nat.predictions.map((p) => p.index), 'top-k order');
  const rel = maxRelErr(r.predictions.map((p) => p.logit), nat.predictions.map((p) => p.logit));
  assert.ok(rel <= LOGIT_REL, `logits: max rel err ${rel} > ${LOGIT_REL}`);
  const prel = maxRelErr(r.predictions.map((p) => p.probability), nat.predictions.map((p) => p.probability), 1e-12);
  assert.ok(prel <= LOGIT_REL, `probabilities: max rel err ${prel} > ${LOGIT_REL}`);
  assert.deepEqual(r.predictions.map((p) => p.label), nat.predictions.map((p) => p.label ?? null), 'labels');

  assert.equal(r.explanations.length, nat.explanations.length);
  r.explanations.forEach((e, i) => {
    const n = nat.explanations[i];
    assert.equal(e.classIndex, n.class);
    assert.equal(e.width, n.heatmap.width);
    assert.equal(e.height, n.heatmap.height);
    const abs = maxAbsErr(e.heatmap, n.heatmap.data);
    assert.ok(abs <= HEATMAP_ABS, `class ${n.class}: heatmap max abs err ${abs} > ${HEATMAP_ABS}`);
    const mrel = maxRelErr([e.rawMax], [n.raw_max], 1e-30);
    assert.ok(mrel <= LOGIT_REL, `class ${n.class}: raw max ${e.rawMax} vs ${n.raw_max}`);
  });

  const ours = await ex.overlay(img, r.explanations[0]);
  const theirs = await ex.decodeImage(nat.overlayPng);
  assert.equal(ours.width, img.width);
  assert.equal(ours.height, img.height);
  assert.equal(theirs.width, img.width);
  assert.equal(countDiff(ours.data, theirs.data), 0, 'overlay pixels differ from the CLI\'s --overlay PNG');
  return { r, nat };
}

const MODELS = ['model.gcam', 'model_torch.gcam'];
const IMAGES = [path.join(FIXTURES, 'img0.png'), path.join(FIXTURES, 'img1.png'),
                path.join(ROOT, 'tests/fixtures/heldout/0000.png')];

for (const simd of [true, false]) {
  const build = simd ? 'SIMD' : 'scalar';
  for (const model of MODELS) {
    describe(`${build} wasm vs native CLI, ${model}`, () => {
      const weights = path.join(FIXTURES, model);
      let ex;
      before(async () => {
        ex = await createExplainer({ weights, simd, worker: false });
        assert.equal(ex.info.simd, simd, 'the build asked for runs');
      });
      after(() => ex && ex.dispose());
      for (const image of IMAGES)
        for (const score of ['logit', 'softmax'])
          test(`${path.basename(image)} ${score}`, () => compare(ex, weights, image, score, 3));
    });
  }
}

describe('wasm vs the float64 torch oracle (fixtures)', () => {
  const manifest = fs.readFileSync(path.join(FIXTURES, 'manifest.txt'), 'utf8').split('\n').map((l) => l.split(' '));
  const file = (tag) => manifest.find((l) => l[0] === 'model' && l[1] === tag)[2];
  const image = (name) => manifest.find((l) => l[0] === 'image' && l[1] === name)[2];
  for (const simd of [true, false]) {
    test(`${simd ? 'SIMD' : 'scalar'}: logits within 1e-4, maps within 2e-5 of the oracle`, async () => {
      let checked = 0;
      for (const tag of ['m0', 'm1']) {
        const ex = await createExplainer({ weights: path.join(FIXTURES, file(tag)), simd, worker: false });
        try {
          for (const [, t, img] of manifest.filter((l) => l[0] === 'logits' && l[1] === tag)) {
            const pixels = await ex.decodeImage(fs.readFileSync(path.join(FIXTURES, image(img))));
            const ref = readF32(path.join(FIXTURES, manifest.find((l) => l[0] === 'logits' && l[1] === t && l[2] === img)[3]));
            const top5 = manifest.find((l) => l[0] === 'top5' && l[1] === t && l[2] === img).slice(3).map(Number);
            for (const l of manifest.filter((x) => x[0] === 'explain' && x[1] === t && x[2] === img)) {
              const [, , , score, cls, rawMax, , , cam] = l;
              const r = await ex.explain(pixels, { classIndex: Number(cls), score });
              assert.deepEqual(r.predictions.map((p) => p.index), top5);
              const lrel = maxRelErr(r.logits, ref, 1e-3);
              assert.ok(lrel <= 1e-4, `${t} ${img}: logits rel err ${lrel}`);
              const abs = maxAbsErr(r.explanations[0].heatmap, readF32(path.join(FIXTURES, cam)));
              assert.ok(abs <= 2e-5, `${t} ${img} ${score} ${cls}: map abs err ${abs}`);
              const mrel = maxRelErr([r.explanations[0].rawMax], [Number(rawMax)], 1e-30);
              assert.ok(mrel <= 1e-3, `${t} ${img} ${score} ${cls}: raw max rel err ${mrel}`);
              checked++;
            }
          }
        } finally {
          ex.dispose();
        }
      }
      assert.ok(checked >= 20, `only ${checked} explanations checked: manifest not parsed?`);
    });
  }
});

describe('random-weight VGG16 (full size), wasm vs native CLI', { timeout: 30 * 60e3 }, () => {
  let weights;
  before(async () => {
    weights = await randomVgg16();
  });
  for (const simd of [true, false]) {
    test(`${simd ? 'SIMD' : 'scalar'} build`, async () => {
      const ex = await createExplainer({ weights, simd, worker: false });
      try {
        assert.equal(ex.info.nClasses, 1000);
        assert.equal(ex.info.camWidth, 14);
        const { r } = await compare(ex, weights, path.join(FIXTURES, 'img0.png'), 'logit', 2);
        assert.equal(r.forwardReused, false);
      } finally {
        ex.dispose();
      }
    });
  }
});
