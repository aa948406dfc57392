// methods.test.mjs: the demo's method and layer pickers, in Chromium, Firefox and WebKit. A
// new layer, then a pixel-level method, each redraw the maps (the canvases' bytes change)
// from the forward the worker holds (forwardReused), at the map's own size.
import assert from 'node:assert/strict';
import path from 'node:path';
import { FIXTURES, requireBuilds } from '../js/helpers.mjs';
import { forEachEngine } from './harness.mjs';

requireBuilds();

const IMAGE = path.join(FIXTURES, 'img0.png');
const same = (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

/** Pick `value` in `selector` and wait for the map it asks for. */
async function pick(page, selector, value, want) {
  await page.setValue(selector, value);
  await page.waitFor((w) => {
    const e = window.gcamDemo.explanation;
    return document.body.dataset.state !== 'explaining' && e && e.method === w.method && e.layer === w.layer;
  }, want);
  assert.equal(await page.waitState(['done', 'error']), 'done', await page.text('#explain-status'));
  assert.equal(await page.evaluate(() => window.gcamDemo.result.forwardReused), true, `${selector} ${value}: no new forward`);
}

forEachEngine((engine) => {
  engine.test('demo: the method and layer pickers change the map without a new forward',
    { timeout: 180e3 }, async ({ browser, origin }) => {
      const page = await browser.newPage();
      await page.goto(`${origin}/web/demo/?sample=none`);
      assert.equal(await page.waitState(['ready', 'error']), 'ready', await page.text('#weights-status'));
      assert.match(await page.text('#method-note'), /MB of memory/, 'the page says what depth input costs');
      const layers = await page.evaluate(() => window.gcamDemo.explainer.info.layers);
      assert.equal(await page.value('#layer-picker'), String(layers.length - 1), 'the last conv by default');
      await page.setInputFiles('#image-file', IMAGE);
      assert.equal(await page.waitState(['done', 'error']), 'done', await page.text('#explain-status'));
      const first = { overlay: await page.canvasPixels(), raw: await page.canvasPixels('raw-map') };
      assert.equal(await page.evaluate(() => window.gcamDemo.explanation.method), 'gradcam');

      // a lower layer: a bigger map, another picture
      const mid = layers.length - 4;
      await pick(page, '#layer-picker', String(mid), { method: 'gradcam', layer: layers[mid].name });
      const size = await page.evaluate(() => [window.gcamDemo.explanation.width, window.gcamDemo.explanation.height]);
      assert.deepEqual(size, [layers[mid].width, layers[mid].height]);
      assert.match(await page.text('#size-raw'), new RegExp(`${layers[mid].width} × ${layers[mid].height}`));
      const second = await page.canvasPixels();
      assert.ok(!same(second.data, first.overlay.data), 'the layer picker changed the overlay');

      // a pixel-level method: the layer picker is off, the map has the input's size
      await pick(page, '#method-picker', 'guided-backprop', { method: 'guided-backprop', layer: 'input' });
      assert.equal(await page.evaluate(() => document.getElementById('layer-picker').disabled), true);
      const info = await page.evaluate(() => window.gcamDemo.explainer.info);
      assert.deepEqual(await page.evaluate(() => [window.gcamDemo.explanation.width, window.gcamDemo.explanation.height]),
        [info.inputWidth, info.inputHeight]);
      const third = await page.canvasPixels();
      assert.ok(!same(third.data, second.data), 'the method picker changed the overlay');
      assert.ok(!same((await page.canvasPixels('raw-map')).data, first.raw.data), 'and the raw map');

      // the worker path of evaluate() and of the new options' checks
      const got = await page.evaluate(async () => {
        const d = window.gcamDemo;
        const r = await d.explainer.evaluate(d.image, d.explanation, { metric: 'insertion', steps: 4 });
        const refused = await d.explainer.explain(d.image, { method: 'gradcam', layer: 'block9_conv9' })
          .then(() => 'resolved', (e) => `${e.constructor.name} ${e.code}`);
        return { metric: r.metric, auc: r.auc, n: r.curve.length, f64: r.curve instanceof Float64Array, refused };
      });
      assert.equal(got.metric, 'insertion');
      assert.ok(got.auc >= 0 && got.auc <= 1, `AUC ${got.auc}`);
      assert.equal(got.n, 5);
      assert.equal(got.f64, true);
      assert.equal(got.refused, 'GcamArgumentError GCAM_STATUS_INVALID_ARGUMENT');
      assert.deepEqual(await page.errors(), [], 'no page errors');
      await page.close();
    });
});
