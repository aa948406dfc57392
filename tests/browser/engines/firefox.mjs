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
  async goto(url) { await this.page.goto(url, { waitUntil: 'load', timeout: 120e3 }); }
  async reload() { await this.page.reload({ waitUntil: 'load', timeout: 120e3 }); }
  evaluate(fn, arg) { return this.page.evaluate(fn, arg); }
  async setInputFiles(selector, file) {
    const input = await this.page.$(selector);
    await input.uploadFile(file);
  }
  screenshotPng() { return this.page.screenshot({ fullPage: true }); }
  close() { return this.page.close(); }
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
