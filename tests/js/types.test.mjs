// types.test.mjs: the TypeScript declarations (web/index.d.ts) against what people paste.
// Every ```js / ```ts snippet of README.md and web/PACKAGE.md is compiled with
// `tsc --strict --noEmit` as a .ts module importing 'gradcam-wasm' (resolved like an installed
// package, through package.json's `exports`), in two settings: a browser program
// (lib: dom; moduleResolution: bundler) and a Node program (no DOM; @types/node;
// module: nodenext). A snippet's fence says where it runs: ```js browser, ```js node, or
// plain ```js for both; ```js no-check skips one (a bundler's config file, say). Free names a
// snippet uses without declaring are the usual page objects: `imageData`, `canvas`, `ctx`.
// Also: overlay()/decodeImage() give a real ImageData in the browser setting (the issue's
// `ctx.putImageData(blended, 0, 0)`); a wrong use is reported (the check can fail); and every
// export and every option the JS reads is declared.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './helpers.mjs';

const run = promisify(execFile);
const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');
const TYPES_NODE = path.join(ROOT, 'node_modules/@types/node');
const DOCS = ['README.md', 'web/PACKAGE.md'];
const missing = !fs.existsSync(TSC) ? 'typescript is not installed (npm ci)'
  : !fs.existsSync(TYPES_NODE) ? '@types/node is not installed (npm ci)' : false;

/** The checked snippets of a Markdown file: { file, line, code, settings }. */
function snippets(file) {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  const out = [];
  const fence = /^```(\w+)([^\n]*)\n([\s\S]*?)^```/gm;
  for (const m of text.matchAll(fence)) {
    const lang = m[1].toLowerCase();
    if (!['js', 'javascript', 'mjs', 'ts', 'typescript'].includes(lang)) continue;
    const tags = m[2].trim().split(/\s+/).filter(Boolean);
    if (tags.includes('no-check')) continue;
    const settings = tags.includes('browser') ? ['browser'] : tags.includes('node') ? ['node'] : ['browser', 'node'];
    out.push({ file, line: text.slice(0, m.index).split('\n').length, code: m[3], settings });
  }
  return out;
}

const SETTINGS = {
  browser: {
    compilerOptions: { strict: true, noEmit: true, target: 'es2022', module: 'esnext', moduleResolution: 'bundler',
                       lib: ['es2022', 'dom', 'dom.iterable'], types: [], skipLibCheck: false },
    globals: 'declare var imageData: ImageData;\ndeclare var canvas: HTMLCanvasElement;\ndeclare var ctx: CanvasRenderingContext2D;\n',
  },
  node: {
    compilerOptions: { strict: true, noEmit: true, target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext',
                       lib: ['es2022'], types: ['node'], typeRoots: [path.join(ROOT, 'node_modules/@types')],
                       skipLibCheck: false },
    globals: "declare var imageData: import('gradcam-wasm').ImageDataLike;\n",
  },
};

/** A scratch project where 'gradcam-wasm' is installed (a link to this repo); `files` maps a
 * name to a module's source. Resolves to { code, output } of tsc on it. */
async function compile(setting, files) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `gcam-tsc-${setting}-`));
  try {
    fs.mkdirSync(path.join(dir, 'node_modules'));
    fs.symlinkSync(ROOT, path.join(dir, 'node_modules/gradcam-wasm'), 'dir');
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    fs.writeFileSync(path.join(dir, 'globals.d.ts'), SETTINGS[setting].globals);
    for (const [name, code] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), `${code}\nexport {};\n`);
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: SETTINGS[setting].compilerOptions, files: ['globals.d.ts', ...Object.keys(files)],
    }));
    try {
      const { stdout } = await run(process.execPath, [TSC, '-p', dir], { cwd: dir });
      return { code: 0, output: stdout };
    } catch (e) {
      if (typeof e.code !== 'number') throw e;
      return { code: e.code, output: `${e.stdout}${e.stderr}`.replaceAll(`${dir}${path.sep}`, '') };
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const all = DOCS.flatMap(snippets);

test('the README and the package README have snippets to check', () => {
  for (const doc of DOCS) assert.ok(all.some((s) => s.file === doc), `${doc} has a js snippet`);
  assert.ok(all.some((s) => s.settings.includes('browser')) && all.some((s) => s.settings.includes('node')));
});

for (const setting of ['browser', 'node']) {
  test(`tsc --strict compiles the READMEs' snippets as a ${setting} program`, { skip: missing, timeout: 120e3 }, async () => {
    const mine = all.filter((s) => s.settings.includes(setting));
    const files = {};
    const where = {};
    mine.forEach((s, i) => {
      files[`snippet${i}.ts`] = s.code;
      where[`snippet${i}.ts`] = `${s.file}:${s.line}`;
    });
    const { code, output } = await compile(setting, files);
    const named = output.replace(/snippet\d+\.ts/g, (f) => `${f} (${where[f]})`);
    assert.equal(code, 0, `tsc failed:\n${named}`);
  });
}

test('overlay() and decodeImage() are ImageData in a browser program, plain objects in Node', { skip: missing, timeout: 120e3 }, async () => {
  const browser = await compile('browser', { 'put.ts': `
import { createExplainer } from 'gradcam-wasm';
const explainer = await createExplainer({ weights: '/m.gcam' });
const { explanations } = await explainer.explain(imageData);
const blended = await explainer.overlay(imageData, explanations[0], { alpha: 0.4 });
canvas.getContext('2d')!.putImageData(blended, 0, 0);
const decoded: ImageData = await explainer.decodeImage(new Uint8Array(8));
ctx.putImageData(decoded, 0, 0);
await createImageBitmap(blended);
` });
  assert.equal(browser.code, 0, browser.output);
  const node = await compile('node', { 'plain.ts': `
import { createExplainer, type PlainImageData } from 'gradcam-wasm';
const explainer = await createExplainer({ weights: 'm.gcam', threads: 2 });
const image = await explainer.decodeImage(new Uint8Array(8));
const plain: PlainImageData = await explainer.overlay(image, (await explainer.explain(image)).explanations[0]);
const sum: number = plain.width * plain.height + plain.data.length;
` });
  assert.equal(node.code, 0, node.output);
});

test('tsc reports a wrong use (the check can fail)', { skip: missing, timeout: 120e3 }, async () => {
  const { code, output } = await compile('browser', { 'wrong.ts': `
import { createExplainer } from 'gradcam-wasm';
const explainer = await createExplainer({ weights: '/m.gcam', threads: 'many' });
const n: number = await explainer.overlay(imageData, { classIndex: 0 });
` });
  assert.notEqual(code, 0);
  assert.match(output, /wrong\.ts\(3,\d+\): error TS2322/, 'threads: \'many\' is refused');
  assert.match(output, /wrong\.ts\(4,\d+\): error TS(2322|2345|2739)/, 'a number is not an ImageData');
});

test('index.d.ts declares every export and every option the JS reads', async () => {
  const dts = fs.readFileSync(path.join(ROOT, 'web/index.d.ts'), 'utf8');
  const declared = new Set([...dts.matchAll(/^export (?:declare )?(?:function|class|const|let) (\w+)/gm)].map((m) => m[1]));
  const api = await import('../../web/index.js');
  for (const name of Object.keys(api)) assert.ok(declared.has(name), `export ${name} is declared`);
  for (const name of declared) assert.ok(name in api, `declared ${name} is exported`);
  const read = new Set();
  for (const f of ['web/index.js', 'web/core.js'])
    for (const m of fs.readFileSync(path.join(ROOT, f), 'utf8').matchAll(/\boptions\.(\w+)/g)) read.add(m[1]);
  assert.ok(read.size >= 10, `options found in the JS: ${[...read]}`);
  for (const name of read) assert.match(dts, new RegExp(`^\\s+${name}\\??:`, 'm'), `option ${name} is declared`);
});
