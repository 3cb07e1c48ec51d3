// Shared by the page tests: start `lens2logit serve`, launch Debian's Chromium, collect console
// errors, save screenshots under target/e2e/ for people to look at.

import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const screenshots = join(root, 'target', 'e2e');
mkdirSync(screenshots, { recursive: true });

// Chromium must not reach the internet (there is none here) and must offer WebGPU when asked.
const quiet = ['--no-first-run', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--disable-quic'];

/** Starts the release CLI on a free port; resolves to { url, stop }. */
export function startServer(extraArgs = []) {
  return start(join(root, 'target', 'release', 'lens2logit'), ['serve', '--port', '0', ...extraArgs]);
}

/** Starts the Zenodo-like test server (tests/support), which serves the page beside it. */
export function startZenodoLike() {
  return start(join(root, 'target', 'release', 'examples', 'zenodo_like'), []);
}

function start(bin, args) {
  const child = spawn(bin, args, { cwd: root });
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    // a binary that is not there (not built) fails the test at once instead of leaving it waiting
    child.on('error', (err) => reject(new Error(`could not start ${bin}: ${err.message} (build it first)`)));
    child.on('exit', (code) => reject(new Error(`${bin} exited (${code}): ${stderr}`)));
    child.stdout.on('data', (chunk) => {
      const match = /http:\/\/\S+/.exec(String(chunk));
      if (match) resolve({ url: match[0].replace(/\/$/, '') + '/', stop: () => child.kill() });
    });
  });
}

/** Launches Chromium headless; `webgpu: false` leaves out --enable-unsafe-webgpu. */
export async function launch({ webgpu = true, extraArgs = [] } = {}) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [...quiet, ...(webgpu ? ['--enable-unsafe-webgpu'] : []), ...extraArgs],
  });
}

export const viewport = { width: 1280, height: 800 };

/**
 * Opens a page that records console errors and uncaught exceptions in `page.errors`: in a context
 * of its own from a browser, or in `browser`'s storage where it is a context (a second tab).
 */
export async function openPage(browser, url) {
  const page = 'newContext' in browser ? await browser.newPage({ viewport }) : await browser.newPage();
  page.errors = [];
  // every URL the page and its workers asked for (which modules loaded)
  page.requested = [];
  page.on('request', (request) => page.requested.push(request.url()));
  page.on('console', (msg) => { if (msg.type() === 'error') page.errors.push(msg.text()); });
  page.on('pageerror', (err) => page.errors.push(String(err)));
  await page.goto(url);
  return page;
}

/** Runs a short session in `mode` (named `name`, with `seed`, where given) and waits until its run is in the runs table. */
export async function runSession(page, { mode, name, seed }) {
  const before = Number(await page.getAttribute('body', 'data-runs'));
  await page.selectOption('#mode', mode);
  if (name !== undefined) await page.fill('#run-name', name);
  if (seed !== undefined) await page.fill('#seed', String(seed));
  await page.click('#start');
  await page.waitForSelector(`body[data-results="${mode}"]`, { timeout: 240_000 });
  await page.waitForSelector(`body[data-runs="${before + 1}"]`, { timeout: 30_000 });
}

export const shot = (page, name) => page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });

/** Opens the page and waits until its first data is loaded. */
export async function openLab(browser, url) {
  const page = await openPage(browser, url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 });
  return page;
}

/** Fraction of a canvas's pixels that are not black. */
export const lit = (page, selector) => page.evaluate((sel) => {
  const c = document.querySelector(sel);
  const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < px.length; i += 4) if (px[i] + px[i + 1] + px[i + 2] > 0) n++;
  return n / (px.length / 4);
}, selector);

/** A canvas's pixels, to compare before and after a change. */
export const pixels = (page, selector) => page.evaluate((sel) => {
  const c = document.querySelector(sel);
  return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
}, selector);

/**
 * Starts a second instance of the lab's compute worker (www/worker.js) in `page` and runs `calls`
 * ([method, args] pairs) through its message protocol in order, the first being `init`; resolves
 * to their results. Tests and benchmarks reach the core exactly as the page does. With `keep`, the
 * worker is left running (a profiler attached to it can still collect what it recorded). With
 * `timed`, it resolves to {results, started, events}: when each call started and every event the
 * worker posted ({at, channel, data}), on the page's clock (performance.now(), ms).
 */
export const inWorker = (page, calls, { keep = false, timed = false } = {}) => page.evaluate(async ({ calls, keep, timed }) => {
  const worker = new Worker('/worker.js', { type: 'module' });
  const [started, events] = [[], []];
  worker.addEventListener('message', ({ data }) => {
    if (timed && data.type === 'event') events.push({ at: performance.now(), channel: data.channel, data: data.data });
  });
  let next = 0;
  const call = (method, args) => new Promise((resolve, reject) => {
    const id = `w${next++}`;
    const listen = ({ data }) => {
      if (data.id !== id) return;
      worker.removeEventListener('message', listen);
      if (data.error) reject(new Error(`${method}: ${data.error}`)); else resolve(data.result);
    };
    worker.addEventListener('message', listen);
    worker.postMessage({ id, method, args });
  });
  try {
    const results = [];
    for (const [method, args] of calls) {
      started.push(performance.now());
      results.push(await call(method, args));
    }
    return timed ? { results, started, events } : results;
  } finally {
    if (keep) window.keptWorker = worker; else worker.terminate();
  }
}, { calls, keep, timed });
