// The first page: the worker starts, the backend is named, the crate's mosaic renders, no errors.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launch, openPage, shot, startServer } from './harness.mjs';

let server;
before(async () => { server = await startServer(); });
after(() => server.stop());

test('the page is cross-origin isolated, runs on WebGPU and renders the mosaic', async () => {
  const browser = await launch({ webgpu: true });
  try {
    const page = await openPage(browser, server.url);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
    const label = await page.textContent('#backend');
    assert.match(label, /^WebGPU/, `backend label: ${label}`);
    assert.equal(await page.evaluate(() => crossOriginIsolated), true);
    // the canvas holds the mosaic, not a blank
    const lit = await page.evaluate(() => {
      const c = document.getElementById('mosaic');
      const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < px.length; i += 4) if (px[i] + px[i + 1] + px[i + 2] > 0) n++;
      return n / (px.length / 4);
    });
    assert.ok(lit > 0.5, `only ${lit} of the mosaic is lit`);
    assert.equal(await page.isHidden('#error'), true);
    await page.waitForSelector('body[data-views="12"]', { timeout: 60_000 });
    await shot(page, 'foundation-webgpu');
    assert.deepEqual(page.errors, []);
  } finally {
    await browser.close();
  }
});

test('without WebGPU the page falls back to the CPU', async () => {
  const browser = await launch({ webgpu: false });
  try {
    const page = await openPage(browser, server.url);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
    assert.equal(await page.textContent('#backend'), 'CPU (wasm SIMD)');
    await shot(page, 'foundation-cpu');
    assert.deepEqual(page.errors, []);
  } finally {
    await browser.close();
  }
});

test('a failure in the worker shows in the page', async () => {
  const browser = await launch({ webgpu: false });
  try {
    // an odd size is refused by the core with a readable reason, which must reach the banner
    const page = await openPage(browser, `${server.url}?backend=cpu&chart=255`);
    await page.waitForSelector('#error:not([hidden])', { timeout: 60_000 });
    assert.match(await page.textContent('#error'), /must be even/);
  } finally {
    await browser.close();
  }
});
