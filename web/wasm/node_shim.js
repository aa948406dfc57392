// Prepended (--extern-pre-js) to the Emscripten loaders. Emscripten 3.1.6's Node code path
// expects CommonJS's `require` and `__dirname`, which an ES module does not have; give it
// both, under Node only. The loaders never read files (web/core.js hands them the bytes),
// so this only keeps their start-up code from throwing.
var require, __dirname;
if (typeof process == 'object' && process.versions && process.versions.node) {
  const nodeModule = await import(/* webpackIgnore: true */ 'node:module');
  require = nodeModule.createRequire(import.meta.url);
  __dirname = require('node:path').dirname(require('node:url').fileURLToPath(import.meta.url));
}
