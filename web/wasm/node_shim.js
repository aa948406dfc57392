// Prepended (--extern-pre-js) to the Emscripten loaders. Emscripten 3.1.6's Node code path
// expects CommonJS's `require` and `__dirname`, which an ES module does not have; give it
// both, under Node only. process.getBuiltinModule (Node >= 20.16) is a plain call, not an
// import: bundlers see no `node:` module and no top-level await (which Vite's default
// 'iife' worker format refuses). Declaring `require` here also makes the loader's
// require('fs') / require('worker_threads') calls local ones, which bundlers leave alone.
// The loaders never read files (web/core.js hands them the bytes), so this only keeps their
// start-up code from throwing.
var require, __dirname;
if (typeof process == 'object' && process.versions && process.versions.node) {
  require = process.getBuiltinModule('node:module').createRequire(import.meta.url);
  __dirname = require('node:path').dirname(require('node:url').fileURLToPath(import.meta.url));
}
