// webkit.mjs: WebKitGTK (Safari's engine) through WebKitWebDriver, which drives MiniBrowser,
// with selenium-webdriver as the client (usingServer: no Selenium Manager, no download).
// WebKitGTK has no headless mode: the adapter starts its own Xvfb display.
// What WebDriver classic lacks here, and how the harness makes up for it:
// - no request interception: the session's proxy is a refusing proxy (startRefusingProxy),
//   so anything not local is refused and recorded; local requests are in the servers' logs;
// - no console log: tests/browser/monitor.js collects the page's errors;
// - no init script: the monitor is put into the HTML by the test server, as for all engines;
// - SharedArrayBuffer is off in JavaScriptCore even for cross-origin isolated pages:
//   JSC_useSharedArrayBuffer=1 turns it on (Safari gives it to isolated pages), so the
//   threaded build runs when the page is isolated (`sharedArrayBuffer: false` to see it off).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { BrowserPage, freePort, startRefusingProxy } from '../harness.mjs';

const DRIVER = '/usr/bin/WebKitWebDriver';
const BROWSER = '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';
const XVFB = '/usr/bin/Xvfb';
const SESSION_MS = Number(process.env.GCAM_WEBKIT_SESSION_MS || 20e3);
const ATTEMPTS = 3;

export async function missing() {
  if (!fs.existsSync(DRIVER)) return `${DRIVER} not found (apt-get install webkit2gtk-driver)`;
  if (!fs.existsSync(BROWSER)) return `${BROWSER} not found (apt-get install libwebkit2gtk-4.1-0)`;
  if (!fs.existsSync(XVFB)) return `${XVFB} not found (apt-get install xvfb xauth)`;
  try {
    await import('selenium-webdriver');
  } catch {
    return 'npm selenium-webdriver is not installed (npm ci)';
  }
  return null;
}

// One WebDriver session, one window per page: every call first makes its window the current one.
class WebKitPage extends BrowserPage {
  constructor(session, handle) {
    super();
    this.engine = 'webkit';
    this.session = session;
    this.driver = session.driver;
    this.handle = handle;
  }
  async focus() {
    if (this.session.current !== this.handle) {
      await this.driver.switchTo().window(this.handle);
      this.session.current = this.handle;
    }
  }
  async goto(url) {
    await this.focus();
    await this.driver.get(url);
  }
  async reload() {
    await this.focus();
    await this.driver.navigate().refresh();
  }
  async evaluate(fn, arg) {
    await this.focus();
    return this.driver.executeScript(`return (${fn}).call(null, arguments[0]);`, arg === undefined ? null : arg);
  }
  async setInputFiles(selector, file) {
    const { By } = await import('selenium-webdriver');
    await this.focus();
    // a file input takes its path as keys (strictFileInteractability is off: it may be hidden)
    await (await this.driver.findElement(By.css(selector))).sendKeys(file);
  }
  /** the viewport grown to the page's height for the shot, then put back */
  async screenshotPng() {
    await this.focus();
    const win = this.driver.manage().window();
    const rect = await win.getRect();
    const [inner, full] = await this.evaluate(() => [innerHeight, document.documentElement.scrollHeight]);
    if (full > inner) {
      await win.setRect({ width: rect.width, height: rect.height + full - inner });
      await this.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(true)))));
    }
    const png = Buffer.from(await this.driver.takeScreenshot(), 'base64');
    if (full > inner) await win.setRect({ width: rect.width, height: rect.height });
    return png;
  }
  async close() {
    await this.focus();
    await this.driver.close();
    await this.driver.switchTo().window(this.session.home);
    this.session.current = this.session.home;
  }
}

/** Start Xvfb on a free display; resolves to { display, process }. */
function startXvfb() {
  const x = track(spawn(XVFB, ['-displayfd', '3', '-screen', '0', '1920x2400x24', '-nolisten', 'tcp'],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] }));
  let err = '';
  x.stderr.on('data', (d) => { err += d; });
  return new Promise((resolve, reject) => {
    let out = '';
    x.stdio[3].on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve({ display: `:${out.trim()}`, process: x });
    });
    x.once('exit', (code) => reject(new Error(`Xvfb exited (${code}): ${err.trim().split('\n').pop()}`)));
  });
}

async function waitForDriver(url, driverProcess, timeout = 20e3) {
  const t0 = Date.now();
  for (;;) {
    if (driverProcess.exitCode !== null) throw new Error(`WebKitWebDriver exited (${driverProcess.exitCode})`);
    try {
      if ((await fetch(`${url}/status`)).ok) return;
    } catch { /* not listening yet */ }
    if (Date.now() - t0 > timeout) throw new Error(`WebKitWebDriver did not answer on ${url} within ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// children still running when the test process exits (a failed test, ^C) are killed with it.
// WebKitWebDriver is started as the leader of its own process group, and stopped as a group:
// killing the driver alone leaves MiniBrowser and its web and network processes running
// (re-parented to init) until the display goes, and a retried session then met the hung one.
const children = new Set();
process.once('exit', () => { for (const c of children) kill(c, 'SIGKILL'); });
function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function kill(child, signal) {
  try {
    if (child.group) process.kill(-child.pid, signal);
    else child.kill(signal);
  } catch { /* already gone */ }
}

function stop(child) {
  if (!child) return Promise.resolve();
  const running = child.exitCode === null && child.signalCode === null;
  if (!running) {
    if (child.group) kill(child, 'SIGKILL'); // the leader went, its group may not have
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => kill(child, 'SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      if (child.group) kill(child, 'SIGKILL');
      resolve();
    });
    kill(child, 'SIGTERM');
  });
}

/** WebKitWebDriver on a free port, in its own process group; its stderr's tail kept. */
async function startDriver(env) {
  const port = await freePort();
  const debug = !!process.env.GCAM_WEBKIT_DEBUG;
  const child = track(spawn(DRIVER, [`--port=${port}`], { stdio: ['ignore', debug ? 'inherit' : 'ignore', 'pipe'], env, detached: true }));
  child.group = true;
  child.tail = '';
  child.stderr.on('data', (d) => {
    if (debug) process.stderr.write(d);
    child.tail = (child.tail + d).slice(-600);
  });
  return { child, url: `http://127.0.0.1:${port}` };
}

export async function launch({ viewport, sharedArrayBuffer = true, env = {} }) {
  const { Builder } = await import('selenium-webdriver');
  const cleanup = [];
  const closeAll = async () => { for (const f of cleanup.reverse()) await f().catch(() => {}); };
  try {
    const proxy = await startRefusingProxy();
    cleanup.push(() => proxy.close());
    const capabilities = {
      browserName: 'MiniBrowser',
      'webkitgtk:browserOptions': { binary: BROWSER, args: ['--automation'] },
      // WebKitGTK speaks TLS to an sslProxy: the refusing proxy sees that a TLS connection came
      proxy: { proxyType: 'manual', httpProxy: proxy.address, sslProxy: proxy.address, noProxy: ['127.0.0.1', 'localhost'] },
      timeouts: { script: 600e3, pageLoad: 120e3, implicit: 0 },
    };
    // A new session sometimes hangs on the shared build machine: WebKitWebDriver connects to
    // MiniBrowser's automation socket and the session never comes. Such an attempt is given up
    // after SESSION_MS (twice that the second time, ...), its driver, browser and display are
    // stopped as a whole, and a new display and driver started, ATTEMPTS times.
    let driver;
    const errors = [];
    for (let attempt = 1; !driver; attempt++) {
      const xvfb = await startXvfb();
      const driverEnv = { ...process.env, DISPLAY: xvfb.display, ...(sharedArrayBuffer ? { JSC_useSharedArrayBuffer: '1' } : {}), ...env };
      const { child: driverProcess, url } = await startDriver(driverEnv);
      const waitMs = SESSION_MS * attempt;
      let timer;
      try {
        await waitForDriver(url, driverProcess);
        driver = await Promise.race([new Builder().usingServer(url).withCapabilities(capabilities).build(),
          new Promise((resolve, reject) => {
            timer = setTimeout(() => reject(new Error(`no session within ${waitMs} ms`)), waitMs);
          })]);
        cleanup.push(() => stop(xvfb.process));
        cleanup.push(() => stop(driverProcess));
      } catch (e) {
        const said = driverProcess.tail.trim().split('\n').slice(-2).join(' | ');
        errors.push(`attempt ${attempt}: ${e.message}${said ? ` (driver said: ${said})` : ''}`);
        await stop(driverProcess);
        await stop(xvfb.process);
        if (attempt === ATTEMPTS) throw new Error(`WebKitWebDriver gave no session: ${errors.join('; ')}`);
      } finally {
        clearTimeout(timer);
      }
    }
    if (errors.length) console.log(`# webkit: new session retried (${errors.join('; ')})`);
    cleanup.push(() => driver.quit());
    const caps = await driver.getCapabilities();
    const home = await driver.getWindowHandle();
    const session = { driver, home, current: home };
    return {
      engine: 'webkit',
      version: `WebKitGTK ${caps.get('browserVersion')} (MiniBrowser)`,
      seen: null, // WebDriver classic reports no requests: see the servers' logs
      outside: proxy.seen,
      // MiniBrowser's automation session is ephemeral, and there WebKit drops a Cache API
      // cache's entries once no document has it open (a reload loses them; Safari with a
      // profile keeps them on disk): see keepCacheStorage() in the harness
      ephemeralCacheStorage: true,
      async newPage() {
        await driver.switchTo().newWindow('window');
        session.current = await driver.getWindowHandle();
        // the window's size is the outer one: make the page's viewport the asked size
        const win = driver.manage().window();
        await win.setRect(viewport);
        const page = new WebKitPage(session, session.current);
        const [w, h] = await page.evaluate(() => [innerWidth, innerHeight]);
        await win.setRect({ width: 2 * viewport.width - w, height: 2 * viewport.height - h });
        return page;
      },
      close: closeAll,
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}
