// The first page: the worker starts, the backend is named, the crate's tiles render, no errors.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launch, lit, openLab, openPage, shot, startServer } from './harness.mjs';

let server;
before(async () => { server = await startServer(); });
after(() => server.stop());

test('the page is cross-origin isolated, runs on WebGPU and renders the tiles', async () => {
  const browser = await launch({ webgpu: true });
  try {
    const page = await openLab(browser, server.url);
    const label = await page.textContent('#backend');
    assert.match(label, /^WebGPU/, `backend label: ${label}`);
    assert.equal(await page.evaluate(() => crossOriginIsolated), true);
    await page.waitForSelector('body[data-views="12"]', { timeout: 60_000 });
    assert.ok((await lit(page, '#stages canvas')) > 0.5, 'the raw mosaic is blank');
    assert.ok((await lit(page, '#views canvas')) > 0.9, 'the first view is blank');
    assert.equal(await page.isHidden('#error'), true);
    await shot(page, 'foundation-webgpu');
    assert.deepEqual(page.errors, []);
  } finally {
    await browser.close();
  }
});

test('without WebGPU the page falls back to the CPU', async () => {
  const browser = await launch({ webgpu: false });
  try {
    const page = await openLab(browser, server.url);
    assert.equal(await page.textContent('#backend'), 'CPU (wasm SIMD)');
    await page.waitForSelector('body[data-isp]', { timeout: 60_000 });
    assert.ok((await lit(page, '#isp-stages canvas')) > 0.5, 'the parametrized ISP drew nothing on the CPU');
    await shot(page, 'foundation-cpu');
    assert.deepEqual(page.errors, []);
  } finally {
    await browser.close();
  }
});

test('a failure in the worker shows in the page', async () => {
  const browser = await launch({ webgpu: false });
  try {
    // an odd tile size is refused by the core with a readable reason, which must reach the banner
    const page = await openPage(browser, `${server.url}?size=31`);
    await page.waitForSelector('#error:not([hidden])', { timeout: 60_000 });
    assert.match(await page.textContent('#error-text'), /must be even/);
  } finally {
    await browser.close();
  }
});

test('a crashed worker is replaced by a new one with the page state', async () => {
  const browser = await launch({ webgpu: false });
  try {
    const page = await openLab(browser, `${server.url}?n=20&seed=5`);
    const lab = page.workers().find((w) => w.url().endsWith('/worker.js'));
    // what the worker sends when a call traps (a panic aborts in wasm)
    await page.evaluate(() => {
      document.body.dataset.ready = 'false';
      document.querySelector('#tiles').replaceChildren();
    });
    const closed = new Promise((resolve) => lab.once('close', resolve));
    await lab.evaluate(() => postMessage({ id: -1, error: 'RuntimeError: unreachable', fatal: true }));
    await page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 });
    assert.match(await page.textContent('#error-text'), /crashed \(RuntimeError: unreachable\)\. A new one was started/);
    // the new worker loaded the tiles the URL names again
    assert.equal(await page.$$eval('#tiles > *', (tiles) => tiles.length), 20);
    assert.equal(new URL(page.url()).searchParams.get('seed'), '5');
    await closed; // the crashed worker was terminated
    assert.ok(page.workers().some((w) => w !== lab && w.url().endsWith('/worker.js')), 'a new worker runs');
  } finally {
    await browser.close();
  }
});
