// ui_browser.mjs: the dashboard in a real browser. Debian's chromium (apt), driven by
// puppeteer-core (scripts/setup-puppeteer.sh installs the pinned package and prints its
// folder, which MLO_PUPPETEER_DIR names). Nothing is downloaded at run time.
//
//   node tests/ui_browser.mjs BASE_URL CASE SHOTS_DIR [API_KEY]
//
// CASE is one of
//   render   the page shows a device row per device and a row per model
//   load     a click on "load" for model a: it shows as ready with its memory per device
//   unload   a click on "unload" for a: its row goes
//   refused  offload "gpu" and a click on "load" for huge: the daemon's reason is shown
//   event    a scan started from outside appears in the event list while the page is open
//   key      the page asks for the key (API_KEY), then shows the models
// Each case saves SHOTS_DIR/CASE.png and prints one JSON line of what it saw, which
// test_ui.c checks against the API; {"ok":false,"error":...} and exit 1 on a failure.
// The page is never reloaded within a case (a marker on window proves it).
import { createRequire } from 'node:module';
import { join } from 'node:path';

const [base, which, shots, key] = process.argv.slice(2);
const require = createRequire(join(process.env.MLO_PUPPETEER_DIR || '.', 'node_modules') + '/');
const puppeteer = require('puppeteer-core');
const TIMEOUT = 60000;

function out(o, code) {
  process.stdout.write(JSON.stringify(o) + '\n');
  process.exitCode = code;
}

const text = (page, sel) => page.$eval(sel, (e) => e.textContent.trim());

async function waitText(page, sel, re) {
  await page.waitForFunction((s, r) => {
    const e = document.querySelector(s);
    return e && new RegExp(r).test(e.textContent);
  }, { timeout: TIMEOUT }, sel, re.source);
  return text(page, sel);
}

async function click(page, sel) {
  await page.waitForSelector(sel, { visible: true, timeout: TIMEOUT });
  // the keyboard, as a person without a mouse would: focus, then Enter
  await page.focus(sel);
  await page.keyboard.press('Enter');
}

const cases = {
  async render(page) {
    await page.waitForSelector('#devices .dev', { timeout: TIMEOUT });
    await page.waitForSelector('#models tbody tr', { timeout: TIMEOUT });
    return {
      devices: await page.$$eval('#devices .dev', (a) => a.map((e) => e.dataset.dev)),
      models: await page.$$eval('#models tbody tr', (a) => a.map((e) => e.dataset.id)),
      fit: await page.$$eval('#models tbody tr', (a) => a.map((e) => e.children[5].textContent)),
      bar_segments: await page.$$eval('#devices .bar span', (a) => a.length),
    };
  },
  async load(page) {
    await click(page, '#models tr[data-id="a"] button[data-act="load"]');
    const state = await waitText(page, '#loaded tr[data-id="a"] td:nth-child(2)', /^ready$/);
    const where = await waitText(page, '#loaded tr[data-id="a"] td:nth-child(3)', /\d.*\/.*\d/);
    const parts = await waitText(page, '#devices .dev .parts', /\ba \d/);
    return { state, where, parts };
  },
  async unload(page) {
    await page.waitForSelector('#loaded tr[data-id="a"]', { timeout: TIMEOUT });
    await click(page, '#loaded tr[data-id="a"] button[data-act="unload"]');
    await page.waitForFunction(() => !document.querySelector('#loaded tr[data-id="a"]'),
      { timeout: TIMEOUT });
    return { empty: await page.$eval('#loaded-empty', (e) => !e.hidden) };
  },
  async refused(page) {
    await page.waitForSelector('#models tr[data-id="huge"]', { timeout: TIMEOUT });
    await page.select('#offload', 'gpu');
    await click(page, '#models tr[data-id="huge"] button[data-act="load"]');
    return { notice: await waitText(page, '#notice', /refused/) };
  },
  async event(page) {
    await page.waitForFunction(() => document.querySelector('#conn').textContent === 'live',
      { timeout: TIMEOUT });
    const before = await page.$$eval('#events li[data-type="scan.finished"]', (a) => a.length);
    const h = key ? { Authorization: 'Bearer ' + key } : {};
    const r = await fetch(base + '/models/scan', { method: 'POST', headers: h });
    if (!r.ok) throw new Error('POST /models/scan: ' + r.status);
    await page.waitForFunction((n) => document.querySelectorAll('#events li[data-type="scan.finished"]').length > n,
      { timeout: TIMEOUT }, before);
    return { first: await text(page, '#events li'), before };
  },
  async key(page) {
    await page.waitForSelector('#keyform:not([hidden])', { timeout: TIMEOUT });
    const asked = await text(page, '#keyform label');
    await page.screenshot({ path: join(shots, 'key-asked.png') });
    await page.type('#keyinput', key);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#models tbody tr', { timeout: TIMEOUT });
    return {
      asked,
      form_hidden: await page.$eval('#keyform', (e) => e.hidden),
      stored: await page.evaluate(() => sessionStorage.getItem('mloffload.apiKey')),
      models: await page.$$eval('#models tbody tr', (a) => a.map((e) => e.dataset.id)),
    };
  },
};

async function main() {
  if (!cases[which]) {
    out({ ok: false, error: 'usage: ui_browser.mjs BASE_URL CASE SHOTS_DIR [API_KEY]' }, 2);
    return;
  }
  const browser = await puppeteer.launch({
    executablePath: process.env.MLO_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
  const errors = [];
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 1000 });
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    await page.goto(base + '/ui/', { waitUntil: 'domcontentloaded', timeout: TIMEOUT });
    await page.evaluate(() => { window.__notReloaded = true; });
    const seen = await cases[which](page);
    seen.reloaded = !(await page.evaluate(() => window.__notReloaded === true));
    await new Promise((r) => setTimeout(r, 300)); // let the last numbers paint for the picture
    await page.screenshot({ path: join(shots, which + '.png') });
    // a refused load logs its 507 in the console: that one is expected
    seen.errors = errors.filter((e) => !/status of (401|507)/.test(e));
    out({ ok: true, case: which, ...seen }, 0);
  } finally {
    await browser.close();
  }
}

main().catch((e) => out({ ok: false, case: which, error: String(e && e.stack || e) }, 1));
