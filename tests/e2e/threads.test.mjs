// Threads in the page: served cross-origin isolated, the worker loads the threaded module and says
// how many threads it computes on; the threaded and the single-threaded modules give the same
// views and the same training; where nothing isolates the page it still gets a working lab.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtempSync, symlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { after, before, test } from 'node:test';
import { inWorker, launch, openLab, openPage, root, shot, startServer } from './harness.mjs';

let server;
before(async () => { server = await startServer(); });
after(() => server.stop());

/**
 * What a user's session runs, in a second lab worker with `threads`: synthetic tiles, the 12
 * views, a short synthesis session. Returns the thread count, a checksum of every view's pixels
 * and the loss curve.
 */
async function session(page, threads) {
  const options = { mode: 'synthesis', model: 'resnet_small', steps: 4, lr: 1e-3, batch: 8, seed: 1, snapshotEvery: 0, intensities: [100] };
  const [ready, , , views, { summary }] = await inWorker(page, [
    ['init', { preferGpu: false, threads }],
    ['loadSynthetic', { task: 'classification', n: 24, seed: 3, size: 128 }],
    ['select', { index: 0 }],
    ['views', {}],
    ['runJob', { options }],
  ]);
  let checksum = 0;
  for (const v of views) for (let i = 0; i < v.rgba.length; i += 7) checksum = (checksum * 31 + v.rgba[i]) % 1_000_000_007;
  const curve = Object.values(summary.curves)[0].map(([, loss]) => loss);
  return { threads: ready.threads, checksum, curve };
}

test('served isolated, the page computes on several threads and says how many', async () => {
  const browser = await launch({ webgpu: false });
  try {
    const page = await openLab(browser, `${server.url}?threads=4`);
    assert.equal(await page.evaluate(() => crossOriginIsolated), true);
    assert.match(await page.textContent('#threads'), /^4 threads$/);
    await shot(page, 'threads-isolated');
    assert.deepEqual(page.errors, []);
  } finally {
    await browser.close();
  }
});

test('the threaded module gives the results of the single-threaded one', async () => {
  const browser = await launch({ webgpu: false });
  try {
    const page = await openLab(browser, `${server.url}?backend=cpu`);
    const threaded = await session(page, 4);
    const single = await session(page, 1);
    assert.equal(threaded.threads, 4);
    assert.equal(single.threads, 1);
    // the static views are computed per pixel: identical
    assert.equal(threaded.checksum, single.checksum);
    // training sums in a different order on more threads: equal to float rounding
    assert.equal(threaded.curve.length, 4);
    threaded.curve.forEach((loss, i) => {
      assert.ok(Math.abs(loss - single.curve[i]) <= 1e-4 * Math.abs(single.curve[i]),
        `step ${i + 1}: ${loss} threaded, ${single.curve[i]} on one thread`);
    });
  } finally {
    await browser.close();
  }
});

/** A plain static server (no COOP/COEP, as most static hosts): www/ at /, `pkg` at /pkg. */
function plainServer(pkg = join(root, 'pkg')) {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm', '.svg': 'image/svg+xml', '.json': 'application/json' };
  const http = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
    const file = path.startsWith('/pkg/') ? join(pkg, path.slice('/pkg/'.length)) : join(root, 'www', path === '/' ? 'index.html' : path);
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  return new Promise((resolve) => http.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${http.address().port}/`, stop: () => http.close() })));
}

test('where nothing isolates the page, the lab runs on one thread and says why', async () => {
  const plain = await plainServer();
  const browser = await launch({ webgpu: false });
  try {
    // a plain host, and no service worker to add the headers (blocked, as some browsers do)
    const context = await browser.newContext({ serviceWorkers: 'block', viewport: { width: 1280, height: 800 } });
    const page = await openLab(context, plain.url);
    assert.equal(await page.evaluate(() => crossOriginIsolated), false);
    assert.match(await page.textContent('#threads'), /^1 thread \(this host does not isolate the page/);
    await page.waitForSelector('body[data-views="12"]', { timeout: 60_000 });
    assert.deepEqual(page.errors, []);
  } finally {
    await browser.close();
    plain.stop();
  }
});

/** pkg/ as scripts/serve.sh builds it without --host: every module but the one-thread one. */
function servedPkg() {
  const dir = mkdtempSync(join(tmpdir(), 'lens2logit-pkg-'));
  for (const module of ['threads', 'labdb', 'dng']) symlinkSync(join(root, 'pkg', module), join(dir, module));
  return dir;
}

test('without the one-thread module (scripts/serve.sh), ?threads=1 runs the threaded module on one thread; a page not isolated says what is missing', async () => {
  const pkg = servedPkg();
  const served = await startServer(['--pkg', pkg]);
  const plain = await plainServer(pkg);
  const browser = await launch({ webgpu: false });
  // the browser reports the missing module's 404, which is the point here
  const otherErrors = (page) => page.errors.filter((e) => !/404|Not Found|lens2logit\.js/.test(e));
  try {
    const page = await openLab(browser, `${served.url}?threads=1`);
    assert.match(await page.textContent('#threads'), /^1 thread$/);
    assert.ok(page.requested.some((url) => url.endsWith('/pkg/threads/lens2logit_bg.wasm')), `${page.requested}`);
    await page.waitForSelector('body[data-views="12"]', { timeout: 60_000 });
    assert.deepEqual(otherErrors(page), []);

    const context = await browser.newContext({ serviceWorkers: 'block', viewport: { width: 1280, height: 800 } });
    const bare = await openPage(context, plain.url);
    await bare.waitForSelector('#error:not([hidden])', { timeout: 60_000 });
    assert.match(await bare.textContent('#error-text'), /not cross-origin isolated, so it needs the one-thread module pkg\/lens2logit\.js, which scripts\/serve\.sh builds only with --host/);
  } finally {
    await browser.close();
    plain.stop();
    served.stop();
  }
});
