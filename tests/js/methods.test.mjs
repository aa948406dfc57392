// methods.test.mjs: explain()'s methods and target layers, createExplainer's depth and
// evaluate(), on the WebAssembly build in Node. Every method gives a finite map in [0, 1] of
// its layer's (or the input's) size; gradcam asked by name is the default explain; the wasm
// maps equal the native CLI's --map-out (one forward, several methods and layers) within
// 1e-5; every bad option is a GcamArgumentError before any work; evaluate's AUC is in [0, 1].
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createExplainer, methods, GcamArgumentError } from '../../web/index.js';
import { CLI, FIXTURES, requireBuilds, requireCli, maxAbsErr, maxRelErr, readF32, testImage } from './helpers.mjs';

requireBuilds();
requireCli();

const run = promisify(execFile);
const WEIGHTS = path.join(FIXTURES, 'model.gcam');
const IMAGE = path.join(FIXTURES, 'img0.png');
const PIXEL = ['saliency', 'guided-backprop', 'guided-gradcam', 'smoothgrad', 'integrated-gradients'];
const MAP_ABS = 1e-5;

function checkMap(e, width, height, what) {
  assert.equal(e.width, width, `${what}: width`);
  assert.equal(e.height, height, `${what}: height`);
  assert.equal(e.heatmap.length, width * height, `${what}: heatmap length`);
  let max = 0;
  for (const v of e.heatmap) {
    assert.ok(Number.isFinite(v) && v >= 0 && v <= 1, `${what}: value ${v} outside [0, 1]`);
    max = Math.max(max, v);
  }
  assert.ok(Number.isFinite(e.rawMax), `${what}: rawMax ${e.rawMax}`);
  // a map normalised by its max reaches 1, unless it is all zeros
  if (e.rawMax > 0) assert.ok(Math.abs(max - 1) < 1e-6, `${what}: max ${max} of a normalised map`);
}

describe('methods and layers (depth input)', () => {
  let ex;
  let img;
  before(async () => {
    ex = await createExplainer({ weights: WEIGHTS, worker: false, depth: 'input' });
    img = await ex.decodeImage(fs.readFileSync(IMAGE));
  });
  after(() => ex && ex.dispose());

  test('the model describes its conv layers; the state says its depth and memory', () => {
    const { layers, nConv, camWidth, camHeight } = ex.info;
    assert.equal(layers.length, nConv);
    for (const l of layers) assert.match(l.name, /^block\d+_conv\d+$/);
    assert.equal(new Set(layers.map((l) => l.name)).size, nConv, 'names are unique');
    assert.equal(layers[0].name, 'block1_conv1');
    assert.equal(layers[nConv - 1].width, camWidth);
    assert.equal(layers[nConv - 1].height, camHeight);
    assert.equal(ex.info.depth, 'input');
    assert.ok(ex.info.stateBytes > 0);
  });

  test('the method list is the C library\'s', () => {
    assert.equal(methods.length, 13);
    assert.deepEqual(methods.slice(8), PIXEL);
  });

  for (const method of methods) {
    test(`${method}: a finite map in [0, 1] of the right size`, async () => {
      const r = await ex.explain(img, { method, classIndex: [3, 7] });
      const { layers, inputWidth, inputHeight } = ex.info;
      const last = layers[layers.length - 1];
      const pixel = PIXEL.includes(method);
      assert.equal(r.explanations.length, 2);
      for (const e of r.explanations) {
        assert.equal(e.method, method);
        assert.equal(e.layer, pixel && method !== 'guided-gradcam' ? 'input' : last.name);
        if (pixel) checkMap(e, inputWidth, inputHeight, method);
        else checkMap(e, last.width, last.height, method);
      }
    });
  }

  test('every CAM method at every layer has that layer\'s size; by name = by index', async () => {
    const { layers } = ex.info;
    for (const method of methods.slice(0, 8))
      for (let i = 0; i < layers.length; i++) {
        const byName = (await ex.explain(img, { method, layer: layers[i].name, classIndex: 3 })).explanations[0];
        checkMap(byName, layers[i].width, layers[i].height, `${method} at ${layers[i].name}`);
        assert.equal(byName.layer, layers[i].name);
        const byIndex = (await ex.explain(img, { method, layer: i, classIndex: 3 })).explanations[0];
        assert.deepEqual(byIndex.heatmap, byName.heatmap);
      }
  });

  test('gradcam by name is the default explain, and the default explainer\'s', async () => {
    const plain = await ex.explain(img, { classIndex: 3, score: 'softmax' });
    const named = await ex.explain(img, { classIndex: 3, score: 'softmax', method: 'gradcam', layer: null });
    assert.deepEqual(named.explanations[0].heatmap, plain.explanations[0].heatmap);
    assert.equal(named.explanations[0].rawMax, plain.explanations[0].rawMax);
    const shallow = await createExplainer({ weights: WEIGHTS, worker: false });
    try {
      assert.equal(shallow.info.depth, 'last');
      assert.ok(shallow.info.stateBytes < ex.info.stateBytes, 'depth input costs more memory than depth last');
      const d = await shallow.explain(img, { classIndex: 3, score: 'softmax' });
      assert.ok(maxAbsErr(d.explanations[0].heatmap, plain.explanations[0].heatmap) <= MAP_ABS);
    } finally {
      shallow.dispose();
    }
  });

  test('smoothgrad is seeded: the same seed gives the same map, another seed another', async () => {
    const a = (await ex.explain(img, { method: 'smoothgrad', samples: 4, seed: 1, classIndex: 3 })).explanations[0];
    const b = (await ex.explain(img, { method: 'smoothgrad', samples: 4, seed: 1, classIndex: 3 })).explanations[0];
    const c = (await ex.explain(img, { method: 'smoothgrad', samples: 4, seed: 2, classIndex: 3 })).explanations[0];
    assert.deepEqual(a.heatmap, b.heatmap);
    assert.ok(maxAbsErr(a.heatmap, c.heatmap) > 0, 'another seed changes the map');
    assert.equal(a.samples, 4);
    assert.equal(a.seed, 1);
  });

  test('one forward serves every method: the forward is reused', async () => {
    await ex.explain(img, { classIndex: 3 });
    for (const method of ['gradcam++', 'saliency', 'integrated-gradients', 'eigencam']) {
      const r = await ex.explain(img, { method, classIndex: 3, steps: 4 });
      assert.equal(r.forwardReused, true, method);
    }
    // and after the extra forwards of smoothgrad / IG the state still holds the image's
    const again = await ex.explain(img, { classIndex: 3 });
    const fresh = await ex.explain(testImage(32, 32), { classIndex: 3 });
    assert.equal(fresh.forwardReused, false);
    const back = await ex.explain(img, { classIndex: 3 });
    assert.deepEqual(back.explanations[0].heatmap, again.explanations[0].heatmap);
  });

  test('the overlay takes a pixel map (224 x 224) as it takes a CAM map', async () => {
    const e = (await ex.explain(img, { method: 'guided-backprop', classIndex: 3 })).explanations[0];
    const o = await ex.overlay(img, e);
    assert.equal(o.width, img.width);
    assert.equal(o.height, img.height);
    const cam = await ex.overlay(img, (await ex.explain(img, { classIndex: 3 })).explanations[0]);
    let diff = 0;
    for (let i = 0; i < o.data.length; i++) diff += o.data[i] !== cam.data[i];
    assert.ok(diff > 0, 'the pixel map\'s overlay differs from the CAM map\'s');
  });

  test('evaluate: deletion and insertion AUCs in [0, 1], the randomization curve per layer', async () => {
    const e = (await ex.explain(img, { classIndex: 3 })).explanations[0];
    for (const metric of ['deletion', 'insertion']) {
      for (const baseline of ['blur', 'mean']) {
        const r = await ex.evaluate(img, e, { metric, steps: 8, baseline });
        assert.equal(r.metric, metric);
        assert.ok(r.auc >= 0 && r.auc <= 1, `${metric} ${baseline}: AUC ${r.auc}`);
        assert.ok(r.curve instanceof Float64Array);
        assert.equal(r.curve.length, 9);
        for (const p of r.curve) assert.ok(p >= 0 && p <= 1, `${metric}: a probability ${p}`);
      }
    }
    const r = await ex.evaluate(img, e, { metric: 'randomization', seed: 3 });
    assert.equal(r.curve.length, ex.info.nDense + ex.info.nConv);
    for (const rho of r.curve) assert.ok(rho >= -1 - 1e-9 && rho <= 1 + 1e-9, `rank correlation ${rho}`);
    // a pixel map is evaluated the same way
    const s = (await ex.explain(img, { method: 'saliency', classIndex: 3 })).explanations[0];
    const d = await ex.evaluate(img, s, { steps: 4 });
    assert.ok(d.auc >= 0 && d.auc <= 1);
    // the state holds the image's forward again
    assert.equal((await ex.explain(img, { classIndex: 3 })).forwardReused, true);
  });
});

describe('wasm maps = the native CLI\'s --map-out', () => {
  let ex;
  let img;
  let dir;
  before(async () => {
    ex = await createExplainer({ weights: WEIGHTS, worker: false, depth: 'input' });
    img = await ex.decodeImage(fs.readFileSync(IMAGE));
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gcam-methods-'));
  });
  after(() => {
    if (ex) ex.dispose();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const cases = [
    { methods: ['gradcam', 'gradcam++', 'layercam', 'eigengradcam'], layers: ['0', 'block2_conv1', 'last'], score: 'logit' },
    { methods: ['hirescam', 'saliency', 'guided-gradcam'], layers: ['1'], score: 'softmax' },
    { methods: ['smoothgrad', 'integrated-gradients'], layers: ['last'], score: 'logit', extra: ['--samples', '3', '--seed', '5', '--steps', '6'] },
  ];
  for (const c of cases) {
    test(`${c.methods.join(',')} at ${c.layers.join(',')} (${c.score})`, async () => {
      const { layers } = ex.info;
      const names = c.layers.map((l) => (l === 'last' ? layers[layers.length - 1].name : /^\d+$/.test(l) ? layers[Number(l)].name : l));
      const prefix = path.join(dir, `${c.score}-${c.methods[0]}`);
      const args = ['explain', '--weights', WEIGHTS, '--image', IMAGE, '--class', '7', '--score', c.score, '--json',
                    '--method', c.methods.join(','), '--layer', names.join(','), '--map-out', prefix, ...(c.extra || [])];
      const { stdout } = await run(CLI, args, { maxBuffer: 256 << 20 });
      const nat = JSON.parse(stdout).explanations;
      let checked = 0;
      for (const method of c.methods) {
        const uses = !PIXEL.includes(method) || method === 'guided-gradcam';
        for (const layer of uses ? names : ['input']) {
          const opts = { method, classIndex: 7, score: c.score, samples: 3, seed: 5, steps: 6 };
          if (uses) opts.layer = layer;
          const e = (await ex.explain(img, opts)).explanations[0];
          const n = nat.find((x) => x.method === method && x.layer === layer);
          assert.ok(n, `the CLI made ${method} at ${layer}`);
          assert.equal(n.map_width, e.width);
          assert.equal(n.map_height, e.height);
          const raw = readF32(`${prefix}.${method}.${layer}.f32`);
          assert.equal(raw.length, e.width * e.height, `${method} ${layer}: --map-out size`);
          const mrel = maxRelErr([e.rawMax], [n.raw_max], 1e-30);
          assert.ok(mrel <= 1e-5, `${method} ${layer}: raw max ${e.rawMax} vs ${n.raw_max}`);
          const abs = maxAbsErr(e.heatmap, n.heatmap.data);
          assert.ok(abs <= MAP_ABS, `${method} ${layer}: map max abs err ${abs} vs the CLI's JSON`);
          const scaled = n.raw_max > 0 ? raw.map((v) => v / n.raw_max) : raw;
          const fileAbs = maxAbsErr(e.heatmap, scaled);
          assert.ok(fileAbs <= MAP_ABS, `${method} ${layer}: map max abs err ${fileAbs} vs --map-out / raw_max`);
          checked++;
        }
      }
      assert.equal(checked, nat.length, 'every map the CLI wrote was compared');
    });
  }
});

describe('bad options are GcamArgumentErrors, before any work', () => {
  let deep;
  let shallow;
  const img = testImage(40, 30);
  before(async () => {
    deep = await createExplainer({ weights: WEIGHTS, worker: false, depth: 'input' });
    shallow = await createExplainer({ weights: WEIGHTS, worker: false });
  });
  after(() => {
    if (deep) deep.dispose();
    if (shallow) shallow.dispose();
  });

  const bad = {
    method: ['gradcamx', 'GradCAM', '', '__proto__', 'constructor', 'toString', 3, null],
    layer: ['block9_conv1', 'input', '', -1, 99, 1.5, '0', {}],
    samples: [0, -1, 1025, 2.5, '4', NaN],
    steps: [0, 1025, 1.5, Infinity],
    noise: [0, -0.1, 1.5, NaN, '0.1', Infinity],
    seed: [-1, 1.5, 2 ** 53, '1', NaN],
  };
  for (const [name, values] of Object.entries(bad)) {
    test(`explain: bad ${name}`, async () => {
      for (const v of values)
        await assert.rejects(deep.explain(img, { [name]: v }), (e) => e instanceof GcamArgumentError &&
          e.message.includes(name === 'method' ? 'method' : name), `${name}: ${String(v)}`);
    });
  }

  test('a request deeper than the explainer\'s depth names the depth option', async () => {
    for (const method of PIXEL)
      await assert.rejects(shallow.explain(img, { method }), (e) => e instanceof GcamArgumentError && /depth: 'input'/.test(e.message),
                           method);
    await assert.rejects(shallow.explain(img, { layer: 0 }), (e) => e instanceof GcamArgumentError && /depth/.test(e.message));
    const mid = await createExplainer({ weights: WEIGHTS, worker: false, depth: 'block2_conv1' });
    try {
      assert.equal(mid.info.depth, 'block2_conv1');
      const i = mid.info.layers.findIndex((l) => l.name === 'block2_conv1');
      await mid.explain(img, { layer: i, method: 'layercam' }); // at the depth: fine
      await mid.explain(img, { layer: i + 1 }); // above it: fine
      await assert.rejects(mid.explain(img, { layer: i - 1 }), (e) => e instanceof GcamArgumentError && /depth/.test(e.message));
      await assert.rejects(mid.explain(img, { method: 'saliency' }), GcamArgumentError);
      assert.ok(mid.info.stateBytes >= shallow.info.stateBytes && mid.info.stateBytes <= deep.info.stateBytes,
                `memory grows with depth: ${shallow.info.stateBytes} ${mid.info.stateBytes} ${deep.info.stateBytes}`);
    } finally {
      mid.dispose();
    }
  });

  test('createExplainer: a bad depth', async () => {
    for (const depth of ['block9_conv9', 99, -3, 1.5, '', null, {}, 'constructor'])
      await assert.rejects(createExplainer({ weights: WEIGHTS, worker: false, depth }),
                           (e) => e instanceof GcamArgumentError && /depth/.test(e.message), String(depth));
  });

  test('evaluate: bad options and explanations', async () => {
    const e = (await deep.explain(img, { classIndex: 3 })).explanations[0];
    const options = {
      metric: ['delete', 'constructor', 3], steps: [0, 1025, 2.5], baseline: ['zero', '__proto__'], seed: [-1, 0.5],
    };
    for (const [name, values] of Object.entries(options))
      for (const v of values)
        await assert.rejects(deep.evaluate(img, e, { [name]: v }), (x) => x instanceof GcamArgumentError && x.message.includes(name),
                             `${name}: ${String(v)}`);
    for (const wrong of [null, {}, { ...e, heatmap: [1, 2] }, { ...e, width: 3 }, { ...e, classIndex: 10 },
                         { ...e, classIndex: undefined }, { ...e, method: 'nope' }, { ...e, layer: 'block9_conv1' }])
      await assert.rejects(deep.evaluate(img, wrong), GcamArgumentError);
    await assert.rejects(deep.evaluate({ data: new Uint8Array(3), width: 1, height: 1 }, e), GcamArgumentError);
    // randomization recomputes the map: a pixel map needs the depth for it
    const s = (await deep.explain(img, { method: 'saliency', classIndex: 3 })).explanations[0];
    await assert.rejects(shallow.evaluate(img, s, { metric: 'randomization' }), (x) => x instanceof GcamArgumentError && /depth/.test(x.message));
    // deletion does not: a shallow explainer evaluates any map
    const r = await shallow.evaluate(img, s, { metric: 'deletion', steps: 4 });
    assert.ok(r.auc >= 0 && r.auc <= 1);
  });
});
