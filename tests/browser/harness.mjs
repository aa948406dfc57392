// harness.mjs: runs a browser test in Chromium, Firefox and WebKit, with one small adapter per
// engine (tests/browser/engines/*.mjs), all from Debian's packages (no browser is downloaded):
//   chromium  /usr/bin/chromium through playwright-core (CDP), headless
//   firefox   /usr/bin/firefox-esr through puppeteer-core (WebDriver BiDi), headless
//   webkit    WebKitGTK's MiniBrowser through WebKitWebDriver and selenium-webdriver, on an
//             Xvfb display the adapter starts itself (WebKitGTK has no headless mode)
//
//   import { forEachEngine } from './harness.mjs';
//   forEachEngine((engine) => {
//     engine.test('demo: something', { timeout: 60e3 }, async ({ browser, origin }) => {
//       const page = await browser.newPage();
//       await page.goto(`${origin}/web/demo/`);
//       await page.waitFor(() => document.body.dataset.state === 'done');
//       ...
//     });
//   });
//
// Every test is registered once per engine, named "<engine>: <name>", inside a describe()
// per engine that starts the browser once and two servers of the repository: `origin` sends
// the cross-origin isolation headers (COOP/COEP: SharedArrayBuffer, so the threaded build),
// `plainOrigin` does not (one thread). An engine whose browser or driver is not installed has
// its tests reported as skipped, with the reason; one that is installed but fails to start
// fails its tests. GCAM_BROWSERS=chromium,webkit runs only those (the others are skipped).
//
// A page (the adapters' common interface, see BrowserPage below): goto, reload, evaluate,
// waitFor, setInputFiles, screenshot, close; the helpers text/value/canvasPixels/
// responsiveness/errors are built on evaluate, so they behave the same everywhere.
// The servers put tests/browser/monitor.js first in every HTML page (heartbeat and frame gaps,
// the page's errors) and log every request with its status (`served`). Requests that would
// leave 127.0.0.1 are refused and recorded in `browser.outside` (by interception in Chromium,
// by a refusing proxy in Firefox, recorded there from BiDi's events, and in WebKit).
import { describe, test as nodeTest, before, after } from 'node:test';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '../../web/serve.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '../..');
export const ARTIFACTS = path.join(ROOT, 'tests/artifacts');
export const ENGINES = ['chromium', 'firefox', 'webkit'];

const MONITOR_PATH = '/__harness/monitor.js';
// the harness's own scripts, served beside the repository
const HARNESS_FILES = Object.fromEntries(['monitor.js', 'beat-worker.js'].map((f) =>
  [`/__harness/${f}`, fs.readFileSync(path.join(HERE, f))]));

/**
 * The RGBA bytes of canvas #id, { width, height, data: Uint8Array }, through any page's
 * `evaluate(fn, arg)` (an adapter's, or playwright's own): read in the page, sent as base64.
 */
export async function canvasPixelsVia(evaluate, id) {
  const got = await evaluate((cid) => {
    const c = document.getElementById(cid);
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let s = '';
    for (let i = 0; i < d.length; i += 0x8000) s += String.fromCharCode.apply(null, d.subarray(i, i + 0x8000));
    return { width: c.width, height: c.height, data: btoa(s) };
  }, id);
  return { width: got.width, height: got.height, data: new Uint8Array(Buffer.from(got.data, 'base64')) };
}

/** Is this URL local (or data:/blob:, which never touch the network)? */
export function isLocal(url) {
  const u = new URL(url);
  return u.protocol === 'data:' || u.protocol === 'blob:' || u.protocol === 'about:' ||
    u.hostname === '127.0.0.1' || u.hostname === 'localhost' || u.hostname === '[::1]';
}

// ---- the servers ------------------------------------------------------------------------------

/**
 * web/serve.mjs behind a small front server that injects the monitor into HTML pages and logs
 * every request. Resolves to { origin, served: [{ path, status }], close() }.
 */
export async function startServer({ isolated = true, files = {} } = {}) {
  const inner = await serve({ root: ROOT, port: 0, files, isolated });
  const innerPort = inner.address().port;
  const served = [];
  const front = http.createServer((req, res) => {
    const entry = { path: req.url, status: 0 };
    served.push(entry);
    res.on('finish', () => { entry.status = res.statusCode; });
    const own = HARNESS_FILES[req.url];
    if (own) {
      const headers = { 'content-type': 'text/javascript; charset=utf-8', 'content-length': own.length };
      if (isolated) Object.assign(headers, { 'cross-origin-resource-policy': 'same-origin',
        'cross-origin-embedder-policy': 'require-corp', 'cross-origin-opener-policy': 'same-origin' });
      res.writeHead(200, headers);
      return res.end(own);
    }
    const up = http.request({ host: '127.0.0.1', port: innerPort, path: req.url, method: req.method,
                              headers: req.headers }, (ur) => {
      const type = String(ur.headers['content-type'] || '');
      if (!type.startsWith('text/html') || req.method === 'HEAD') {
        res.writeHead(ur.statusCode, ur.headers);
        return ur.pipe(res);
      }
      const chunks = [];
      ur.on('data', (c) => chunks.push(c));
      ur.on('end', () => {
        const html = Buffer.concat(chunks).toString('utf8');
        const tag = `<script src="${MONITOR_PATH}"></script>`;
        const m = /<head[^>]*>/i.exec(html);
        const out = Buffer.from(m ? html.slice(0, m.index + m[0].length) + tag + html.slice(m.index + m[0].length)
                                  : tag + html);
        res.writeHead(ur.statusCode, { ...ur.headers, 'content-length': out.length });
        res.end(out);
      });
    });
    up.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
    req.pipe(up);
  });
  await new Promise((resolve, reject) => {
    front.once('error', reject);
    front.listen(0, '127.0.0.1', resolve);
  });
  return {
    origin: `http://127.0.0.1:${front.address().port}`,
    served,
    close: () => Promise.all([front, inner].map((s) => new Promise((r) => {
      s.close(r);
      s.closeAllConnections?.();
    }))),
  };
}

/**
 * An HTTP proxy that refuses everything and records what came: "GET http://host/path" for
 * plain HTTP (and ws:), "CONNECT host:port" for a tunnel, and for a TLS connection to the
 * proxy itself (WebKitGTK's sslProxy speaks TLS to the proxy, so the target is encrypted)
 * "TLS connection (https: target not readable)". For engines without request interception.
 */
export async function startRefusingProxy() {
  const seen = [];
  const server = net.createServer((sock) => {
    sock.on('error', () => {});
    sock.once('data', (buf) => {
      if (buf[0] === 0x16) {
        seen.push('TLS connection (https: target not readable)');
        return sock.destroy();
      }
      seen.push(buf.toString('latin1').split('\r\n')[0]);
      sock.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { address: `127.0.0.1:${server.address().port}`, seen, close: () => new Promise((r) => server.close(r)) };
}

/** A free TCP port on 127.0.0.1 (for a driver that must be told its port). */
export async function freePort() {
  const s = net.createServer();
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

// ---- the page interface ------------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * What every engine's page offers. An adapter implements the primitives (goto, reload,
 * evaluate, setInputFiles, screenshotPng, close); the rest is written once, on evaluate.
 * `evaluate(fn, arg)`: fn runs in the page with one JSON argument; its (awaited) result
 * comes back as JSON.
 */
export class BrowserPage {
  /** `run()`, failing with the step's name after `ms` rather than hanging the test. */
  async step(name, ms, run) {
    let timer;
    try {
      return await Promise.race([run(), new Promise((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`${this.engine}: ${name} did not return within ${ms} ms`)), ms);
      })]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Poll fn(arg) in the page until it returns something truthy; returns that. */
  async waitFor(fn, arg, { timeout = 120e3, interval = 100, message } = {}) {
    const t0 = Date.now();
    let last;
    for (;;) {
      try {
        last = await this.evaluate(fn, arg);
        if (last) return last;
      } catch (e) {
        // a navigation in progress destroys the context: try again
        if (Date.now() - t0 > timeout) throw e;
      }
      if (Date.now() - t0 > timeout) {
        // what the page showed: its state and status lines
        const seen = await this.evaluate(() => JSON.stringify({ state: document.body && document.body.dataset.state,
          status: [...document.querySelectorAll('[role=status]')].map((e) => e.textContent) })).catch((e) => String(e));
        throw new Error(`${this.engine}: timed out after ${timeout} ms waiting for ${message || fn.toString()}; the page: ${seen}`);
      }
      await sleep(interval);
    }
  }

  /** Wait until <body data-state> is one of `states`; returns it. */
  async waitState(states, timeout = 120e3) {
    return this.waitFor((s) => s.includes(document.body.dataset.state) && document.body.dataset.state, states,
      { timeout, message: `data-state in ${states}` });
  }

  text(selector) {
    return this.evaluate((s) => document.querySelector(s).textContent, selector);
  }

  value(selector) {
    return this.evaluate((s) => document.querySelector(s).value, selector);
  }

  /** Set a control's value and fire its input and change events, as a user's edit would. */
  setValue(selector, value) {
    return this.evaluate(([s, v]) => {
      const el = document.querySelector(s);
      el.value = v;
      el.dispatchEvent(new Event('input', { bubbles: true }));
      el.dispatchEvent(new Event('change', { bubbles: true }));
    }, [selector, value]);
  }

  /** The RGBA bytes of a canvas: { width, height, data: Uint8Array }. */
  async canvasPixels(id = 'overlay') {
    return canvasPixelsVia((fn, arg) => this.evaluate(fn, arg), id);
  }

  /**
   * The monitor's figures since the page started or the last reset: { heartbeat: { maxGapMs,
   * maxBlockedMs, beats, windowMs, longGaps, control }, frames: { maxGapMs, beats }, states }.
   * `reset`: the next reading starts from now.
   */
  responsiveness({ reset = false } = {}) {
    return this.evaluate((o) => window.__harness.responsiveness(o), { reset });
  }

  /** console.error calls, uncaught exceptions and unhandled rejections of the page so far. */
  errors() {
    return this.evaluate(() => window.__harness.errors.slice());
  }

  /** Dispatch a drop event carrying the file on the element (the user dragging a file in). */
  dropFile(selector, file, type) {
    const b64 = fs.readFileSync(file).toString('base64');
    return this.evaluate(([s, name, mime, data]) => {
      const dt = new DataTransfer();
      dt.items.add(new File([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))], name, { type: mime }));
      const ev = new DragEvent('drop', { bubbles: true, cancelable: true, dataTransfer: dt });
      document.querySelector(s).dispatchEvent(ev);
      return ev.dataTransfer && ev.dataTransfer.files.length;
    }, [selector, path.basename(file), type, b64]);
  }

  /** A screenshot of the whole page into `file` (after two frames, so it is not stale). */
  async screenshot(file) {
    await this.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(true)))));
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, await this.screenshotPng());
    return file;
  }
}

/**
 * Keep `origin`'s Cache API storage alive across a reload or navigation: in an engine whose
 * session is ephemeral (WebKit's automation), a page on the origin holds every cache open.
 * Resolves to a function that closes that page; elsewhere it does nothing.
 */
export async function keepCacheStorage(browser, origin) {
  if (!browser.ephemeralCacheStorage) return async () => {};
  const keeper = await browser.newPage();
  await keeper.goto(`${origin}/__harness/monitor.js`);
  await keeper.evaluate(async () => {
    window.__kept = await Promise.all((await caches.keys()).map((n) => caches.open(n)));
    return window.__kept.length;
  });
  return () => keeper.close();
}

// ---- engines -----------------------------------------------------------------------------------

const ADAPTERS = {
  chromium: () => import('./engines/chromium.mjs'),
  firefox: () => import('./engines/firefox.mjs'),
  webkit: () => import('./engines/webkit.mjs'),
};

/** Why `engine` cannot run here, or null when it can (installed, and selected). */
export async function unavailable(engine) {
  const only = process.env.GCAM_BROWSERS;
  if (only && !only.split(',').map((s) => s.trim()).includes(engine))
    return `not in GCAM_BROWSERS=${only}`;
  let adapter;
  try {
    adapter = await ADAPTERS[engine]();
  } catch (e) {
    return `its driver package is not installed (npm ci): ${e.message.split('\n')[0]}`;
  }
  return adapter.missing();
}

/**
 * Start `engine`'s browser. Resolves to a browser adapter: { engine, version, newPage(),
 * outside (requests refused for leaving localhost), seen (every request the engine reports;
 * null when it cannot), close() }. `options` go to the adapter (viewport, env, ...).
 */
export async function launch(engine, options = {}) {
  const adapter = await ADAPTERS[engine]();
  return adapter.launch({ viewport: { width: 1100, height: 900 }, ...options });
}

/**
 * Register the tests `define` declares once per engine. define(engine) is called with
 * engine = { name, test(name, options, fn) }; fn receives the context { engine, browser,
 * origin, plainOrigin, served, plainServed } (served: the requests of that server).
 * `serverFiles` are extra files for both servers (web/serve.mjs's `files`), as a value or
 * an async function.
 */
export function forEachEngine(define, { serverFiles = {}, launchOptions = {} } = {}) {
  for (const name of ENGINES) {
    describe(name, () => {
      const ctx = { engine: name };
      let skip = null;
      let runnable = 0; // tests not skipped by their options: none, no browser to start
      const servers = [];
      before(async () => {
        skip = await unavailable(name);
        if (skip || !runnable) return;
        const files = typeof serverFiles === 'function' ? await serverFiles() : serverFiles;
        const [iso, plain] = await Promise.all([startServer({ isolated: true, files }),
                                                startServer({ isolated: false, files })]);
        servers.push(iso, plain);
        Object.assign(ctx, { origin: iso.origin, served: iso.served, plainOrigin: plain.origin, plainServed: plain.served });
        ctx.browser = await launch(name, launchOptions);
        console.log(`# ${name}: ${ctx.browser.version}`);
      });
      after(async () => {
        if (ctx.browser) await ctx.browser.close();
        await Promise.all(servers.map((s) => s.close()));
      });
      define({
        name,
        test(testName, options, fn) {
          if (typeof options === 'function') [options, fn] = [{}, options];
          if (!options.skip) runnable++; // a todo test runs too (its failure is reported, not counted)
          nodeTest(`${name}: ${testName}`, options, async (t) => {
            if (skip) return t.skip(`${name} cannot run here: ${skip}`);
            if (!ctx.browser) throw new Error(`${name} did not start`);
            return fn(ctx, t);
          });
        },
      });
    });
  }
}
