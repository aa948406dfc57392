#!/usr/bin/env node
// stress_threads.mjs: how often createExplainer fails to settle, in one engine, on a cross-origin
// isolated page (the threaded build) or not. Not part of `node --test` (it takes minutes):
//
//   node tests/browser/stress_threads.mjs [--engine firefox] [--pages 20] [--runs 10] [--plain]
//                                         [--weights blob|url] [--bound-ms 30000]
//
// Opens --pages fresh pages; in each, --runs times: createExplainer on the small fixture model
// (as a Blob, as the demo's local-file case does, or by URL), one explain, dispose. A run that
// has not settled after --bound-ms (longer than the library's own 20 s load limit, so a
// GcamLoadError is told apart from a hang) counts as a hang. Prints one line per page and the
// totals: "runs N, ok N, errors N, hangs N".
import path from 'node:path';
import { launch, startServer, ROOT } from './harness.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i < 0 ? dflt : args[i + 1];
};
const engine = opt('engine', 'firefox');
const pages = Number(opt('pages', 20));
const runs = Number(opt('runs', 10));
const boundMs = Number(opt('bound-ms', 30e3));
const weightsKind = opt('weights', 'blob');
const isolated = !args.includes('--plain');

/** In the page: `runs` explainers made, used and disposed; what each did. */
async function loop({ runs, boundMs, weightsKind }) {
  const api = await import('/web/index.js');
  const url = '/tests/fixtures/vgg_small/model.gcam';
  const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
  const png = new Uint8Array(await (await fetch('/tests/fixtures/vgg_small/img1.png')).arrayBuffer());
  const out = [];
  // the library's trace points, where a debugging build has them (BroadcastChannel 'gcam-trace')
  let trace = [];
  const channel = new BroadcastChannel('gcam-trace');
  channel.onmessage = (e) => trace.push(e.data);
  for (let i = 0; i < runs; i++) {
    trace = [];
    const t0 = performance.now();
    let ex = null;
    const made = api.createExplainer({ weights: weightsKind === 'url' ? url : new Blob([bytes]) })
      .then((e) => { ex = e; return 'ok'; }, (e) => `error ${e.name} ${e.code}: ${e.message}`);
    const got = await Promise.race([made, new Promise((r) => setTimeout(() => r('hang'), boundMs))]);
    if (got === 'ok') {
      try {
        const img = await ex.decodeImage(png);
        await ex.explain(img, { topK: 1 });
        out.push({ got: `ok ${ex.info.threads}`, ms: Math.round(performance.now() - t0) });
      } catch (e) {
        out.push({ got: `explain error ${e.name}: ${e.message}`, ms: Math.round(performance.now() - t0) });
      }
      ex.dispose();
    } else {
      out.push({ got, ms: Math.round(performance.now() - t0), trace });
      // a hung explainer's worker is left as it is: the page is closed after the loop
      made.then(() => ex && ex.dispose());
    }
  }
  return out;
}

const server = await startServer({ isolated });
const browser = await launch(engine, {});
console.log(`# ${browser.version}, ${isolated ? 'cross-origin isolated' : 'not isolated'}, ` +
            `${pages} pages x ${runs} runs, weights as ${weightsKind}, hang bound ${boundMs} ms`);
const totals = { runs: 0, ok: 0, errors: 0, hangs: 0 };
const t0 = Date.now();
try {
  for (let p = 0; p < pages; p++) {
    const page = await browser.newPage();
    try {
      await page.goto(`${server.origin}/web/serve.mjs`);
      const got = await page.evaluate(loop, { runs, boundMs, weightsKind });
      for (const r of got) {
        totals.runs++;
        if (r.got.startsWith('ok')) totals.ok++;
        else if (r.got === 'hang') totals.hangs++;
        else totals.errors++;
      }
      const bad = got.map((r, i) => [i, r]).filter(([, r]) => !r.got.startsWith('ok'));
      const threads = [...new Set(got.filter((r) => r.got.startsWith('ok')).map((r) => r.got.slice(3)))];
      console.log(`page ${p}: ${got.length - bad.length}/${got.length} ok (threads ${threads}), ` +
                  `ms ${got.map((r) => r.ms).join(',')}${bad.length ? `; ${JSON.stringify(bad)}` : ''}`);
    } catch (e) {
      console.log(`page ${p}: ${e.message}`);
    } finally {
      await page.close().catch(() => {});
    }
  }
} finally {
  await browser.close();
  await server.close();
}
console.log(`runs ${totals.runs}, ok ${totals.ok}, errors ${totals.errors}, hangs ${totals.hangs}; ` +
            `${Math.round((Date.now() - t0) / 1000)} s (${path.relative(ROOT, process.argv[1])})`);
process.exit(totals.hangs || totals.errors ? 1 : 0);
