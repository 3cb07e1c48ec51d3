// The static site (scripts/build-site.sh -> dist/) on a plain static server that sends no special
// headers, `python3 -m http.server`: the service worker makes the page cross-origin isolated after
// one reload, the page paints every stage, trains on more than one thread, and a session ends.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { launch, lit, openLab, root, shot } from './harness.mjs';

const dist = join(root, 'dist');
let server;

before(async () => {
  assert.ok(existsSync(join(dist, 'index.html')), 'no dist/: run scripts/build-site.sh (scripts/test.sh does)');
  const child = spawn('python3', ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '--directory', dist]);
  server = await new Promise((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`python3 -m http.server exited (${code})`)));
    child.stdout.on('data', (chunk) => {
      const port = /port (\d+)/.exec(String(chunk))?.[1];
      if (port) resolve({ url: `http://127.0.0.1:${port}/`, stop: () => child.kill() });
    });
  });
});
after(() => server?.stop());

test('dist/ holds the page, both modules, the service worker and the headers file', () => {
  for (const file of ['index.html', 'main.js', 'worker.js', 'coi.js', 'sw.js', 'csp.txt', 'pkg/lens2logit_bg.wasm',
    'pkg/lens2logit_bg.wasm.br', 'pkg/threads/lens2logit_bg.wasm', 'pkg/threads/lens2logit.js', 'vendor/uplot/uPlot.esm.js']) {
    assert.ok(existsSync(join(dist, file)), `dist/${file} is missing`);
  }
  const csp = readFileSync(join(dist, 'csp.txt'), 'utf8').trim();
  // one policy: the page's meta tag, the service worker's header and _headers say the same
  assert.ok(readFileSync(join(dist, 'index.html'), 'utf8').includes(`content="${csp}"`), 'index.html carries another CSP than csp.txt');
  assert.match(readFileSync(join(dist, '_headers'), 'utf8'), new RegExp(`Content-Security-Policy: ${csp.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
});

test('served by a plain static server, the lab isolates itself, paints every stage and trains on threads', async () => {
  const browser = await launch({ webgpu: false });
  try {
    const page = await openLab(browser, `${server.url}?n=24&size=32&steps=4&batch=4`);
    assert.equal(await page.evaluate(() => crossOriginIsolated), true, 'the service worker did not isolate the page');
    assert.equal(await page.evaluate(() => Boolean(navigator.serviceWorker.controller)), true);
    const threads = Number(await page.getAttribute('body', 'data-threads'));
    assert.ok(threads > 1, `${threads} thread(s)`);
    assert.match(await page.textContent('#threads'), new RegExp(`^${threads} threads$`));
    await page.waitForSelector('body[data-views="12"]', { timeout: 60_000 });
    assert.ok((await lit(page, '#stages canvas')) > 0.5, 'the raw mosaic is blank');
    // every stage: the share of its pixels that are not black
    const stages = await page.$$eval('#stages figure', (figures) => figures.map((f) => {
      const c = f.querySelector('canvas');
      const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < px.length; i += 4) if (px[i] + px[i + 1] + px[i + 2] > 0) n++;
      return [f.querySelector('figcaption').textContent, n / (px.length / 4)];
    }));
    assert.ok(stages.length >= 8, `${stages.length} stages`);
    for (const [name, share] of stages) assert.ok(share > 0.05, `the ${name} stage is blank`);
    // the worker runs under the page's policy too: a request to another origin is refused there
    // (without the service worker's header the worker has no policy and sends it)
    const lab = page.workers().find((w) => w.url().endsWith('/worker.js'));
    const violated = await lab.evaluate(() => new Promise((resolve) => {
      self.addEventListener('securitypolicyviolation', (e) => resolve(e.effectiveDirective), { once: true });
      fetch('http://127.0.0.2:9/').catch(() => {});
      setTimeout(() => resolve('no violation'), 5000);
    }));
    assert.equal(violated, 'connect-src');
    await page.click('#start');
    await page.waitForSelector('body[data-results="synthesis"]', { timeout: 240_000 });
    await shot(page, 'site-static-host');
    assert.deepEqual(page.errors, []);
  } finally {
    await browser.close();
  }
});
