// package.test.mjs: `npm pack` gives a tarball that a fresh project installs and uses:
// import { createExplainer } from 'gradcam-wasm', the same answers as the repo's web/index.js,
// the .wasm files and the worker as exported subpaths, the types shipped, nothing else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createExplainer } from '../../web/index.js';
import { FIXTURES, ROOT, requireBuilds } from './helpers.mjs';

requireBuilds();
const run = promisify(execFile);

test('npm pack -> install in a fresh project -> explain', { timeout: 180e3 }, async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gcam-consumer-'));
  try {
    // the wasm is already built (requireBuilds): skip prepack's rebuild
    const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], { cwd: ROOT });
    const [info] = JSON.parse(stdout);
    const files = info.files.map((f) => f.path).sort();
    for (const f of ['package.json', 'web/index.js', 'web/index.d.ts', 'web/worker.js', 'web/core.js',
                     'web/dist/gcam-simd.wasm', 'web/dist/gcam-scalar.wasm', 'web/dist/gcam-simd.mjs',
                     'web/dist/gcam-simd-threads.mjs', 'web/dist/gcam-simd-threads.wasm',
                     'web/dist/gcam-simd-threads.worker.js', 'web/dist/package.json', 'web/PACKAGE.md', 'web/BUNDLERS.md', 'LICENSE'])
      assert.ok(files.includes(f), `${f} is in the tarball`);
    for (const f of files)
      assert.ok(/^(package\.json|README\.md|LICENSE|web\/(PACKAGE|BUNDLERS)\.md|web\/[a-z-]+\.(js|d\.ts)|web\/dist\/gcam-(simd|scalar|simd-threads)\.(mjs|wasm)|web\/dist\/gcam-simd-threads\.worker\.js|web\/dist\/package\.json)$/.test(f),
        `${f} should not be in the tarball`);

    const project = path.join(tmp, 'consumer');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    await run('npm', ['install', '--offline', '--no-audit', '--no-fund', path.join(tmp, info.filename)], { cwd: project });
    fs.writeFileSync(path.join(project, 'main.mjs'), `
import { createExplainer, GcamArgumentError } from 'gradcam-wasm';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
const weights = process.argv[2];
const ex = await createExplainer({ weights });
const img = await ex.decodeImage(fs.readFileSync(process.argv[3]));
const r = await ex.explain(img, { topK: 5 });
let argumentError = false;
try { await ex.explain(img, { classIndex: 1e6 }); } catch (e) { argumentError = e instanceof GcamArgumentError; }
const resolved = ['gradcam-wasm/gcam-simd.wasm', 'gradcam-wasm/gcam-scalar.wasm', 'gradcam-wasm/gcam-simd-threads.wasm', 'gradcam-wasm/worker']
  .map((s) => fs.existsSync(fileURLToPath(import.meta.resolve(s))));
ex.dispose();
console.log(JSON.stringify({ predictions: r.predictions, heatmap: Array.from(r.explanations[0].heatmap),
                             simd: ex.info.simd, threads: ex.info.threads, argumentError, resolved }));
`);
    const weights = path.join(FIXTURES, 'model.gcam');
    const imagePath = path.join(FIXTURES, 'img1.png');
    const out = await run(process.execPath, ['main.mjs', weights, imagePath], { cwd: project });
    const got = JSON.parse(out.stdout);
    assert.ok(fs.existsSync(path.join(project, 'node_modules/gradcam-wasm/web/index.d.ts')));
    assert.deepEqual(got.resolved, [true, true, true, true], 'wasm files and the worker resolve as subpaths');
    assert.equal(got.argumentError, true);
    if (os.cpus().length > 1) assert.ok(got.threads > 1, `the installed package runs ${got.threads} thread(s)`);

    const ex = await createExplainer({ weights, worker: false });
    const img = await ex.decodeImage(fs.readFileSync(imagePath));
    const want = await ex.explain(img, { topK: 5 });
    ex.dispose();
    assert.deepEqual(got.predictions, want.predictions);
    assert.deepEqual(got.heatmap, Array.from(want.explanations[0].heatmap));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
