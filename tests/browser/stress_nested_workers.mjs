#!/usr/bin/env node
// stress_nested_workers.mjs: does Firefox's `new Worker()` inside a worker return? The cause of
// the threaded build's createExplainer hang (see web/worker.js), shown without the library.
// Not part of `node --test`:
//
//   node tests/browser/stress_nested_workers.mjs [--runs 400] [--raw]
//
// tests/browser/nested/page.html constructs, --runs times, a worker that constructs a nested
// module worker. By default Firefox runs under the harness (puppeteer-core over WebDriver
// BiDi), the page left alone; --raw starts /usr/bin/firefox-esr headless with a fresh profile
// and no automation at all. The page reports to the server; prints "runs N, ok N, hangs N
// (N stuck in the constructor)".
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launch, startServer, ROOT } from './harness.mjs';

const args = process.argv.slice(2);
const runs = Number(args.includes('--runs') ? args[args.indexOf('--runs') + 1] : 400);
const raw = args.includes('--raw');
const dir = path.join(ROOT, 'tests/browser/nested');
const files = Object.fromEntries(['outer.js', 'inner.js', 'page.html'].map((f) => [`/nested/${f}`, path.join(dir, f)]));
const server = await startServer({ isolated: true, files });
const url = `${server.origin}/nested/page.html?n=${runs}`;
let stop;
if (raw) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'gcam-ff-raw-'));
  const ff = spawn('/usr/bin/firefox-esr', ['--headless', '--no-remote', '--profile', profile, url], { stdio: 'ignore' });
  stop = async () => { ff.kill('SIGTERM'); fs.rmSync(profile, { recursive: true, force: true }); };
} else {
  const browser = await launch('firefox', {});
  const page = await browser.newPage();
  await page.goto(url);
  stop = () => browser.close();
}
const t0 = Date.now();
let done = null;
while (!done && Date.now() - t0 < 1800e3) {
  await new Promise((r) => setTimeout(r, 1000));
  done = server.served.find((s) => s.path.startsWith('/__report?done='));
}
await stop();
await server.close();
if (!done) {
  console.log('the page did not finish within 30 min');
  process.exit(1);
}
const q = new URLSearchParams(done.path.split('?')[1]);
console.log(`${raw ? 'firefox-esr, no automation' : 'firefox-esr under WebDriver BiDi'}: runs ${runs}, ok ${q.get('ok')}, ` +
            `hangs ${q.get('hangs')} (${q.get('stuck')} stuck in the constructor); ${Math.round((Date.now() - t0) / 1000)} s`);
