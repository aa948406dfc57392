// The tiny app every bundler test builds: explain one image with the package as a user
// imports it, draw the overlay on a canvas, and leave what the test checks in
// window.gcamResult. ?threads=N, ?worker=0 choose the options.
import { createExplainer, GcamError } from 'gradcam-wasm';

(async () => {
  const q = new URLSearchParams(location.search);
  const t0 = performance.now();
  try {
    const explainer = await createExplainer({
      weights: './model.gcam',
      worker: q.get('worker') !== '0',
      threads: q.has('threads') ? Number(q.get('threads')) : undefined,
    });
    const png = new Uint8Array(await (await fetch('./img1.png')).arrayBuffer());
    const image = await explainer.decodeImage(png);
    const { predictions, explanations } = await explainer.explain(image, { topK: 5 });
    const canvas = document.createElement('canvas');
    canvas.id = 'overlay';
    canvas.width = image.width;
    canvas.height = image.height;
    document.body.append(canvas);
    const ctx = canvas.getContext('2d');
    ctx.putImageData(await explainer.overlay(image, explanations[0], { alpha: 0.4 }), 0, 0);
    const shown = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let s = '';
    for (let i = 0; i < shown.length; i += 0x8000) s += String.fromCharCode.apply(null, shown.subarray(i, i + 0x8000));
    window.gcamResult = {
      threads: explainer.info.threads, simd: explainer.info.simd, memory: explainer.info.memory,
      ms: performance.now() - t0,
      predictions: predictions.map((p) => p.index), width: canvas.width, height: canvas.height, overlay: btoa(s),
    };
    explainer.dispose();
  } catch (e) {
    window.gcamResult = { error: { name: e.name, code: e.code, message: e.message, typed: e instanceof GcamError } };
  }
})();
