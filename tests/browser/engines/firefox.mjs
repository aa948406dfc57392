// firefox.mjs: Debian's stock /usr/bin/firefox-esr, headless, through puppeteer-core over
// WebDriver BiDi (Debian has no geckodriver; playwright needs its own patched Firefox).
// Requests of the pages and their workers are recorded from BiDi's events (`seen`, and the
// non-local ones in `outside`); anything not local goes to the harness's refusing proxy (the
// profile's proxy settings), which refuses it and records it in `background` too, with
// Firefox's own traffic (remote settings: firefox.settings.services.mozilla.com, a few
// requests a session despite the prefs below). Not puppeteer's request interception, which
// holds every request until the client lets it go.
import fs from 'node:fs';
import { BrowserPage, isLocal, startRefusingProxy } from '../harness.mjs';

const EXECUTABLE = '/usr/bin/firefox-esr';

export async function missing() {
  if (!fs.existsSync(EXECUTABLE)) return `${EXECUTABLE} not found (apt-get install firefox-esr)`;
  try {
    await import('puppeteer-core');
  } catch {
    return 'npm puppeteer-core is not installed (npm ci)';
  }
  return null;
}

class FirefoxPage extends BrowserPage {
  constructor(page) {
    super();
    this.engine = 'firefox';
    this.page = page;
  }
  // each call bounded, naming itself, so that a page that hangs fails the test with a reason
  goto(url) { return this.step(`goto ${url}`, 120e3, () => this.page.goto(url, { waitUntil: 'load', timeout: 110e3 })); }
  reload() { return this.step('reload', 120e3, () => this.page.reload({ waitUntil: 'load', timeout: 110e3 })); }
  evaluate(fn, arg) { return this.step('evaluate', 300e3, () => this.page.evaluate(fn, arg)); }
  setInputFiles(selector, file) {
    return this.step(`upload into ${selector}`, 60e3, async () => (await this.page.$(selector)).uploadFile(file));
  }
  screenshotPng() { return this.step('screenshot', 60e3, () => this.page.screenshot({ fullPage: true })); }
  close() { return this.step('close', 60e3, () => this.page.close()); }
}

export async function launch({ viewport, prefs = {} }) {
  const { default: puppeteer } = await import('puppeteer-core');
  const proxy = await startRefusingProxy();
  const [host, port] = proxy.address.split(':');
  let browser;
  try {
    browser = await puppeteer.launch({
      browser: 'firefox', executablePath: EXECUTABLE, headless: true, protocolTimeout: 600e3,
      // puppeteer's own prefs already turn off updates, telemetry and the like
      extraPrefsFirefox: {
        'network.proxy.type': 1, 'network.proxy.http': host, 'network.proxy.http_port': Number(port),
        'network.proxy.ssl': host, 'network.proxy.ssl_port': Number(port),
        'network.proxy.no_proxies_on': '127.0.0.1,localhost', 'network.proxy.allow_hijacking_localhost': false,
        // the browser's own traffic, which the proxy would record (as Marionette's test prefs do)
        'services.settings.server': 'data:,#remote-settings-dummy/v1',
        'network.connectivity-service.enabled': false, 'network.captive-portal-service.enabled': false,
        'browser.safebrowsing.malware.enabled': false, 'browser.safebrowsing.phishing.enabled': false,
        'browser.safebrowsing.downloads.enabled': false, 'browser.safebrowsing.provider.mozilla.updateURL': '',
        'app.update.disabledForTesting': true, 'extensions.getAddons.cache.enabled': false,
        'browser.region.network.url': '', 'browser.search.update': false, 'network.dns.disablePrefetch': true,
        'network.prefetch-next': false, 'toolkit.telemetry.server': '', 'datareporting.policy.dataSubmissionEnabled': false,
        ...prefs,
      },
    });
  } catch (e) {
    await proxy.close();
    throw e;
  }
  const seen = [];
  const outside = [];
  return {
    engine: 'firefox',
    version: `Firefox ${(await browser.version()).replace(/^firefox\//, '')}`,
    seen,
    outside,
    background: proxy.seen,
    async newPage() {
      const page = await browser.newPage();
      await page.setViewport(viewport);
      page.on('request', (r) => {
        const url = r.url();
        seen.push(url);
        if (!isLocal(url)) outside.push(url);
      });
      return new FirefoxPage(page);
    },
    async close() {
      await browser.close();
      await proxy.close();
    },
  };
}
