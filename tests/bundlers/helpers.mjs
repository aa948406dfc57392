// helpers.mjs: what the bundler tests share: the packed tarball, fresh apps that install it,
// the bundlers of the repo's devDependencies, servers with and without cross-origin
// isolation, and headless Chromium.
//
// The apps live under tests/artifacts/bundlers/ (git-ignored), inside the repo, so that the
// one thing they need beyond the tarball, a Rollup plugin named in rollup.config.mjs, is found
// in the repo's node_modules the way Node finds any package: no download, no registry.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { ROOT } from '../js/helpers.mjs';

export const run = promisify(execFile);
export const WORK = path.join(ROOT, 'tests/artifacts/bundlers');
export const BIN = path.join(ROOT, 'node_modules/.bin');

const ISOLATION = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
};

/** `npm pack` of the repo (the wasm is built already: no prepack), into WORK. */
export async function packTarball() {
  fs.mkdirSync(WORK, { recursive: true });
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', WORK], { cwd: ROOT });
  return path.join(WORK, JSON.parse(stdout)[0].filename);
}

/** A fresh app folder with the tarball installed (offline: the tarball has no dependencies). */
export async function makeApp(name, tarball) {
  const dir = path.join(WORK, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `app-${name}`, private: true, type: 'module' }));
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--no-package-lock', tarball], { cwd: dir });
  return dir;
}

/** The code blocks of web/BUNDLERS.md marked `<!-- test:NAME -->`: what the doc tells a user. */
export function docBlock(name) {
  const text = fs.readFileSync(path.join(ROOT, 'web/BUNDLERS.md'), 'utf8');
  const m = text.match(new RegExp(`<!-- test:${name} -->\\s*\`\`\`[a-z]*\\n([\\s\\S]*?)\`\`\``));
  if (!m) throw new Error(`web/BUNDLERS.md has no block marked test:${name}`);
  return m[1];
}

/** Run a doc's shell block in `dir`, `npm install` lines skipped (the tarball is installed),
 * `npx X` as the repo's node_modules/.bin/X (no download). Resolves to the lines run and
 * what they printed. */
export async function runShellBlock(block, dir) {
  const lines = block.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
    .filter((l) => !/^npm install\b/.test(l)).map((l) => l.replace(/^npx /, ''));
  let log = '';
  for (const line of lines) {
    const { stdout, stderr } = await run('sh', ['-c', line], {
      cwd: dir, env: { ...process.env, PATH: `${BIN}:${process.env.PATH}`, NO_COLOR: '1' }, maxBuffer: 16 << 20,
    });
    log += stdout + stderr;
  }
  return { lines, log };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A reverse proxy to 127.0.0.1:`target` that adds the cross-origin isolation headers (for
 * the Vite dev server, which the test does not configure). WebSockets pass through. */
export function isolatingProxy(target) {
  const server = http.createServer((req, res) => {
    const up = http.request({ host: '127.0.0.1', port: target, path: req.url, method: req.method, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode, { ...r.headers, ...ISOLATION });
        r.pipe(res);
      });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('upgrade', (req, socket, head) => {
    const up = net.connect(target, '127.0.0.1', () => {
      up.write(`${req.method} ${req.url} HTTP/1.1\r\n` +
               Object.entries(req.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n');
      up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

export async function launchChromium() {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gcam-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
           '--disable-sync', '--disable-quic', '--no-first-run'],
  });
  // nothing leaves the machine
  await context.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (['data:', 'blob:'].includes(u.protocol) || u.hostname === '127.0.0.1') return route.continue();
    return route.abort();
  });
  return {
    context,
    async close() {
      await context.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

export function close(server) {
  if (server.closeAllConnections) server.closeAllConnections();
  return new Promise((resolve) => server.close(resolve));
}
