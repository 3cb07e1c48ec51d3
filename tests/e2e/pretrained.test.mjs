// Fine-tuning in the page as the paper did it: the controls' bounds and defaults from the core's
// one description of every setting; a session started from weights fetched by URL from another
// origin (a model hub: the Zenodo-like server here), kept in the browser's cache, recorded in the
// run; the paper's segmenter at the datasets' 256 px either trains or is refused with the batch
// that fits.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { launch, openLab, root, shot, startServer, startZenodoLike } from './harness.mjs';

let server;
let hub;
let browser;
before(async () => {
  server = await startServer();
  hub = await startZenodoLike();
  browser = await launch({ webgpu: true });
});
after(async () => {
  await browser.close();
  server.stop();
  hub.stop();
});

test('the controls take their bounds, defaults and choices from the core', async () => {
  const settings = JSON.parse(execFileSync(join(root, 'target', 'release', 'lens2logit'), ['settings', '--json']));
  const page = await openLab(browser, server.url);
  let checked = 0;
  for (const s of settings) {
    const control = await page.$(`#${s.id}`);
    if (!control) continue;
    const shown = await control.evaluate((el) => ({ value: el.value, min: el.min, max: el.max, options: el.options ? [...el.options].map((o) => o.value) : null }));
    assert.equal(shown.value, s.default === null ? '' : String(s.default), `${s.id}'s default`);
    const { type, min, max, values } = s.range;
    const choices = () => (type === 'whole' ? Array.from({ length: max - min + 1 }, (_, i) => String(min + i)) : values.map(String));
    if (shown.options) assert.deepEqual(shown.options.filter(Boolean), choices(), `${s.id}'s choices`);
    else assert.deepEqual([Number(shown.min), Number(shown.max)], [s.range.min, s.range.max], `${s.id}'s bounds`);
    checked += 1;
  }
  assert.ok(checked >= 10, `only ${checked} controls checked`);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a session starts from weights fetched by URL, cached, and recorded in its run', async () => {
  const weights = `${hub.url}weights/resnet18.pth`;
  const page = await openLab(browser, `${server.url}?n=16&size=32&steps=3&batch=4&mode=optimisation&model=resnet18&device=cpu&freeze-backbone=20&weights-url=${encodeURIComponent(weights)}`);
  for (const [round, origin] of [[1, 'fetched'], [2, 'from the browser cache']]) {
    await page.click('#start');
    await page.waitForFunction((n) => document.querySelectorAll('#runs-table tbody tr').length >= n, round, { timeout: 240_000 });
    await page.waitForSelector('#start:not([disabled])');
    const info = await page.textContent('#weights-info');
    assert.match(info, new RegExp(`resnet18\\.pth: \\d+\\.\\d MB, SHA-256 [0-9a-f]{64}, \\d+ tensors, ${origin}`), info);
  }
  // the lab log keeps where the weights came from
  const meta = await page.evaluate(async () => {
    const { listRuns } = await import('./runs-store.js');
    return (await listRuns()).sort((a, b) => b.started_ms - a.started_ms)[0];
  });
  assert.equal(meta.params.init_url, weights);
  assert.match(meta.params.init_sha256, /^[0-9a-f]{64}$/);
  assert.equal(meta.params.freeze_backbone, '20');
  await shot(page, 'pretrained-weights');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test("the paper's segmenter at 256 px and batch 8 trains in the page or is refused with the batch that fits", async () => {
  const page = await openLab(browser, `${server.url}?task=segmentation&n=16&size=256&steps=1&batch=8&mode=optimisation&model=unetpp_resnet18&device=cpu`);
  await page.click('#start');
  await page.waitForFunction(() => document.body.dataset.results || !document.getElementById('error').hidden, null, { timeout: 900_000 });
  const error = await page.$eval('#error', (e) => (e.hidden ? null : e.textContent));
  if (error) assert.match(error, /unetpp_resnet18.*256x256.*batch 8.*at most \d+/s, error);
  else assert.equal(await page.getAttribute('body', 'data-results'), 'optimisation');
  console.log(error ?? 'trained');
  await page.close();
});

test("smp's U-Net++ trains in the page on WebGPU", async () => {
  const page = await openLab(browser, `${server.url}?task=segmentation&n=8&size=32&steps=1&batch=2&mode=optimisation&model=unetpp_resnet18&device=gpu`);
  await page.click('#start');
  await page.waitForSelector('body[data-results="optimisation"]', { timeout: 600_000 });
  assert.match(await page.textContent('#train-device'), /^training on WebGPU/);
  assert.deepEqual(page.errors, []);
  await page.close();
});
