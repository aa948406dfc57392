// firefox.mjs: Debian's stock /usr/bin/firefox-esr, headless, through puppeteer-core over
// WebDriver BiDi (Debian has no geckodriver; playwright needs its own patched Firefox). Each
// page intercepts its requests (its workers' included): anything not local is recorded and
// refused.
import fs from 'node:fs';
import { BrowserPage, isLocal } from '../harness.mjs';

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
  // each call bounded, naming itself: one of them hung once in a full run (not reproduced)
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
  const browser = await puppeteer.launch({
    browser: 'firefox', executablePath: EXECUTABLE, headless: true, protocolTimeout: 600e3,
    // puppeteer's own prefs already turn off updates, telemetry and the like
    extraPrefsFirefox: prefs,
  });
  const seen = [];
  const outside = [];
  return {
    engine: 'firefox',
    version: `Firefox ${(await browser.version()).replace(/^firefox\//, '')}`,
    seen,
    outside,
    async newPage() {
      const page = await browser.newPage();
      await page.setViewport(viewport);
      await page.setRequestInterception(true);
      page.on('request', (r) => {
        const url = r.url();
        seen.push(url);
        if (isLocal(url)) return r.continue();
        outside.push(url);
        return r.abort();
      });
      return new FirefoxPage(page);
    },
    close: () => browser.close(),
  };
}
