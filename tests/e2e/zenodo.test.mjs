// Raw tiles streamed into the page from a server that behaves like Zenodo (tests/support), with
// its faults, and the cache that makes a reload instant.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launch, lit, openPage, shot, startZenodoLike } from './harness.mjs';

let server;
let browser;
before(async () => {
  server = await startZenodoLike();
  browser = await launch({ webgpu: false });
});
after(async () => {
  await browser.close();
  server.stop();
});

const lab = (mode, dataset = 'microscopy') =>
  `${server.url}?source=zenodo&dataset=${dataset}&limit=64&zenodo=${encodeURIComponent(`${server.url}${mode}`)}`;

/** Records the tile count each time the tile browser changes. */
const watchTiles = (page) => page.addInitScript(() => {
  window.tileCounts = [];
  document.addEventListener('DOMContentLoaded', () => {
    new MutationObserver(() => window.tileCounts.push(document.getElementById('tiles').children.length))
      .observe(document.getElementById('tiles'), { childList: true });
  });
});

test('tiles stream in one by one, with labels, and come back from the cache', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  await watchTiles(page);
  await page.goto(lab('ok'));
  await page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 });
  const counts = await page.evaluate(() => window.tileCounts);
  assert.ok(new Set(counts).size >= 10, `tiles did not appear one by one: ${counts}`);
  // a limit draws a class-balanced sample from the labelled tiles: the 10 of the classes kept
  assert.equal(await page.$$eval('#tiles button', (b) => b.length), 10);
  assert.equal(await page.$$eval('#tiles .badge', (b) => b.length), 10, 'every tile carries its label');
  await page.waitForSelector('body[data-views="12"]');
  await shot(page, 'zenodo-stream');
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 });
  assert.match(await page.textContent('#status'), /cache/);
  assert.equal(await page.$$eval('#tiles button', (b) => b.length), 10, 'the cache keeps the verified tiles');
  assert.equal(await page.$$eval('#tiles .badge', (b) => b.length), 10, 'and their labels');
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('a mirror that answers byte ranges is read by random access', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  await page.addInitScript(() => {
    window.statuses = [];
    document.addEventListener('DOMContentLoaded', () => {
      const status = document.getElementById('status');
      new MutationObserver(() => window.statuses.push(status.textContent))
        .observe(status, { childList: true, characterData: true, subtree: true });
    });
  });
  await page.goto(lab('mirror'));
  await page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 });
  const statuses = await page.evaluate(() => window.statuses);
  assert.ok(statuses.some((s) => /Raw-Microscopy\.zip by random access/.test(s)), `statuses: ${statuses}`);
  assert.equal(await page.$$eval('#tiles button', (b) => b.length), 10);
  assert.equal(await page.$$eval('#tiles .badge', (b) => b.length), 10, 'labels read before the tiles');
  assert.deepEqual(page.errors, []);
  await context.close();
});

test("the paper's own processed views show beside ours", async () => {
  const page = await openPage(browser, lab('ok', 'drone'));
  await page.waitForSelector('body[data-paper-views="1"]', { timeout: 120_000 });
  assert.equal(await page.textContent('#paper-views figcaption'), 'bilinear');
  assert.ok((await lit(page, '#paper-views canvas')) > 0.9, 'the paper view is blank');
  await shot(page, 'zenodo-paper-views');
  await page.close();
});

test('a 429 is waited out', async () => {
  const page = await openPage(browser, lab('rate-limit', 'drone'));
  await page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 });
  assert.equal(await page.$$eval('#tiles button', (b) => b.length), 4);
  await page.close();
});

for (const [mode, pattern] of [['truncate', /broke off/], ['corrupt', /damaged|MD5/]]) {
  test(`a ${mode} download shows a clear message`, async () => {
    const page = await openPage(browser, lab(mode));
    await page.waitForSelector('#error:not([hidden])', { timeout: 120_000 });
    assert.match(await page.textContent('#error-text'), pattern);
    await shot(page, `zenodo-${mode}`);
    await page.close();
  });
}
