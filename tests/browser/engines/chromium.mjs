// chromium.mjs: Debian's /usr/bin/chromium, headless, through playwright-core (CDP; no browser
// is downloaded). Requests of the pages and their workers are seen by the context: anything
// not local is recorded and refused.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BrowserPage, isLocal } from '../harness.mjs';

const EXECUTABLE = '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
              '--disable-sync', '--disable-quic', '--no-first-run'];

export async function missing() {
  if (!fs.existsSync(EXECUTABLE)) return `${EXECUTABLE} not found (apt-get install chromium)`;
  try {
    await import('playwright-core');
  } catch {
    return 'npm playwright-core is not installed (npm ci)';
  }
  return null;
}

class ChromiumPage extends BrowserPage {
  constructor(page) {
    super();
    this.engine = 'chromium';
    this.page = page;
  }
  async goto(url) { await this.page.goto(url); }
  async reload() { await this.page.reload(); }
  evaluate(fn, arg) { return this.page.evaluate(fn, arg); }
  setInputFiles(selector, file) { return this.page.setInputFiles(selector, file); }
  screenshotPng() { return this.page.screenshot({ fullPage: true }); }
  close() { return this.page.close(); }
}

export async function launch({ viewport, args = [] }) {
  const { chromium } = await import('playwright-core');
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gcam-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: EXECUTABLE, headless: true, args: [...ARGS, ...args], viewport,
  });
  const seen = [];
  const outside = [];
  context.on('request', (r) => seen.push(r.url()));
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (isLocal(url)) return route.continue();
    outside.push(url);
    return route.abort();
  });
  return {
    engine: 'chromium',
    version: `Chromium ${context.browser()?.version() ?? (await newVersion(context))}`,
    seen,
    outside,
    async newPage() { return new ChromiumPage(await context.newPage()); },
    async close() {
      await context.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

// a persistent context has no browser() object: ask a page
async function newVersion(context) {
  const page = await context.newPage();
  const ua = await page.evaluate(() => navigator.userAgent);
  await page.close();
  return (/Chrome\/([\d.]+)/.exec(ua) || [])[1] || ua;
}
