#!/usr/bin/env node
// serve.mjs: a tiny static file server for the demo, on localhost only.
//
//   node web/serve.mjs [--port 8080] [--root DIR]     then open http://localhost:8080/web/demo/
//
// Serves the repository root (the demo fetches /weights/... and /web/dist/...), with the
// MIME types the browser insists on (application/wasm for streaming compilation,
// text/javascript for modules). Nothing outside the root is served.
//
// Every response carries the cross-origin isolation headers (COOP: same-origin, COEP:
// require-corp, CORP: same-origin): they make the page `crossOriginIsolated`, which is what
// gives it SharedArrayBuffer and so the threaded WebAssembly build (web/core.js). A host that
// cannot send them still works, on one thread. `isolated: false` turns them off.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.gcam': 'application/octet-stream',
  '.webmanifest': 'application/manifest+json',
};

const DEFAULT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Start serving `root` on 127.0.0.1:`port` (0 = any free port). Resolves to the server.
 * `files` maps extra URL paths to files outside the root (tests serve a generated model). */
export function serve({ root = DEFAULT_ROOT, port = 8080, host = '127.0.0.1', log = false, files = {},
                        isolated = true } = {}) {
  const rootDir = path.resolve(root);
  const ISOLATION = isolated ? {
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-embedder-policy': 'require-corp',
    'cross-origin-resource-policy': 'same-origin',
  } : {};
  const server = http.createServer((req, res) => {
    for (const [k, v] of Object.entries(ISOLATION)) res.setHeader(k, v);
    const send = (status, body, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-cache' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n');
    let rel;
    try {
      rel = decodeURIComponent(new URL(req.url, 'http://localhost').pathname);
    } catch {
      return send(400, 'bad request\n');
    }
    if (Object.hasOwn(files, rel)) {
      return fs.stat(files[rel], (err, st) => (err ? send(404, 'not found\n') : sendFile(files[rel], st)));
    }
    let file = path.join(rootDir, rel);
    if (file !== rootDir && !file.startsWith(rootDir + path.sep)) return send(403, 'forbidden\n');
    fs.stat(file, (err, st) => {
      if (!err && st.isDirectory()) {
        if (!rel.endsWith('/')) {
          res.writeHead(301, { location: rel + '/' });
          return res.end();
        }
        file = path.join(file, 'index.html');
        return fs.stat(file, (err2, st2) => (err2 ? send(404, 'not found\n') : sendFile(file, st2)));
      }
      if (err) return send(404, 'not found\n');
      return sendFile(file, st);
    });
    function sendFile(f, st) {
      const type = MIME[path.extname(f).toLowerCase()] || 'application/octet-stream';
      const headers = { 'content-type': type, 'content-length': st.size, 'cache-control': 'no-cache' };
      // the demo's service worker may serve all of web/ (its worker and wasm live there)
      if (rel.endsWith('/demo/sw.js')) headers['service-worker-allowed'] = rel.slice(0, -'demo/sw.js'.length);
      res.writeHead(200, headers);
      if (req.method === 'HEAD') return res.end();
      fs.createReadStream(f).pipe(res);
      if (log) console.log(`${req.method} ${req.url}`);
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : dflt;
  };
  const port = Number(opt('--port', process.env.PORT || 8080));
  const server = await serve({ root: opt('--root', DEFAULT_ROOT), port, log: args.includes('--log') });
  const { port: actual } = server.address();
  console.log(`gradcam-wasm demo: http://localhost:${actual}/web/demo/  (Ctrl-C to stop)`);
}
