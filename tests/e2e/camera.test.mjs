// The camera panel: tiles dropped without camera metadata ask for a camera, and the paper's
// microscopy tile, developed with the drone camera left over, comes out magenta until the
// microscopy preset is chosen; an uploaded camera JSON and edited values re-render the views; the
// camera saves as the file the CLI's --camera reads; an invalid camera changes nothing.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { launch, openLab, pixels, root, shot, startServer } from './harness.mjs';

const demo = process.env.LENS2LOGIT_DEMO_DATA || `${root}/../shared/data/raw2logit-demo`;
const VIEW = '#views figure:nth-child(1) canvas';

let server;
let browser;
before(async () => {
  server = await startServer();
  browser = await launch({ webgpu: true });
});
after(async () => {
  await browser.close();
  server.stop();
});

/** Mean R, G, B (0-255) of a canvas. */
const meanColour = (page, selector) => page.evaluate((sel) => {
  const c = document.querySelector(sel);
  const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const sum = [0, 0, 0];
  for (let i = 0; i < px.length; i += 4) for (let k = 0; k < 3; k++) sum[k] += px[i + k];
  return sum.map((s) => s / (px.length / 4));
}, selector);

/** Magenta: green well below both red and blue. */
const magenta = ([r, g, b]) => Math.min(r, b) - g > 40;

/** Runs `action` and waits until the 12 views are drawn again after it. */
async function rerendered(page, action) {
  await page.evaluate(() => { delete document.body.dataset.views; });
  await action();
  await page.waitForSelector('body[data-views="12"]', { timeout: 60_000 });
}

/** The camera the page shows, as it saves it (camera.json). */
async function savedCamera(page) {
  const download = page.waitForEvent('download');
  await page.click('#camera-save');
  const file = await download;
  assert.equal(file.suggestedFilename(), 'camera.json');
  return JSON.parse(readFileSync(await file.path(), 'utf8'));
}

test('a dropped microscopy tile asks for a camera; presets, uploads and edits re-render it', async () => {
  const page = await openLab(browser, `${server.url}?n=8&size=32`);
  assert.equal(await page.textContent('#camera-source'), 'synthetic');
  assert.equal(await page.isHidden('#camera-ask'), true);

  // the paper's microscopy tile, dropped as a user drops it
  await page.selectOption('#source', 'files');
  const dataTransfer = await page.evaluateHandle((b64) => {
    const transfer = new DataTransfer();
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], 'micro.png', { type: 'image/png' }));
    return transfer;
  }, readFileSync(join(demo, 'micro.png')).toString('base64'));
  await rerendered(page, () => page.dispatchEvent('#drop', 'drop', { dataTransfer }));
  await page.waitForSelector('body[data-camera-source="none"]');
  assert.equal(await page.$$eval('#tiles button', (b) => b.length), 1);
  assert.equal(await page.isVisible('#camera-ask'), true, 'the panel does not ask for a camera');
  assert.match(await page.textContent('#camera-ask'), /no camera metadata/);
  const leftOver = await meanColour(page, VIEW);
  console.log(`micro.png with the drone camera left over: mean RGB ${leftOver.map((v) => v.toFixed(0))}`);
  assert.ok(magenta(leftOver), `expected magenta with the wrong camera, got ${leftOver}`);
  await shot(page, 'camera-asks');

  // the microscopy preset: no longer magenta, and the panel stops asking
  await rerendered(page, () => page.selectOption('#camera-preset', 'microscopy'));
  await page.waitForSelector('body[data-camera-source="preset microscopy"]');
  const micro = await meanColour(page, VIEW);
  console.log(`micro.png with the microscopy preset: mean RGB ${micro.map((v) => v.toFixed(0))}`);
  assert.ok(!magenta(micro), `still magenta: ${micro}`);
  assert.equal(await page.isHidden('#camera-ask'), true);
  assert.equal(await page.inputValue('fieldset[data-camera="gamma"] input'), '2.2');
  await shot(page, 'camera-microscopy');

  // an uploaded camera JSON: the microscopy camera with a gamma of 1
  const dir = mkdtempSync(join(tmpdir(), 'camera-'));
  const uploaded = { ...(await savedCamera(page)), gamma: 1 };
  writeFileSync(join(dir, 'gamma1.json'), JSON.stringify(uploaded));
  let before = await pixels(page, VIEW);
  await rerendered(page, () => page.setInputFiles('#camera-upload', join(dir, 'gamma1.json')));
  await page.waitForSelector('body[data-camera-source="uploaded JSON"]');
  assert.equal(await page.inputValue('fieldset[data-camera="gamma"] input'), '1');
  assert.ok((await pixels(page, VIEW)).some((v, i) => v !== before[i]), 'the uploaded camera did not change the view');

  // an edited value, applied
  before = await pixels(page, VIEW);
  await page.fill('fieldset[data-camera="white_balance"] label:nth-child(3) input', '1.5');
  await rerendered(page, () => page.click('#camera-apply'));
  await page.waitForSelector('body[data-camera-source="edited"]');
  assert.ok((await pixels(page, VIEW)).some((v, i) => v !== before[i]), 'the edited camera did not change the view');
  const applied = { ...uploaded, white_balance: [uploaded.white_balance[0], 1.5, uploaded.white_balance[2]] };
  assert.deepEqual(await savedCamera(page), applied, 'camera.json is not the applied camera');
  assert.equal(await page.isHidden('#error'), true);

  // invalid cameras: an error in the page, and nothing changes
  before = await pixels(page, VIEW);
  writeFileSync(join(dir, 'broken.json'), '{"black_level": [0, 0, 0]}');
  await page.setInputFiles('#camera-upload', join(dir, 'broken.json'));
  await page.waitForSelector('#error:not([hidden])');
  assert.match(await page.textContent('#error-text'), /^broken\.json: could not decode camera JSON/);
  await page.click('#error-close');
  await page.fill('fieldset[data-camera="black_level"] label:nth-child(3) input', '');
  await page.click('#camera-apply');
  await page.waitForSelector('#error:not([hidden])');
  assert.equal(await page.textContent('#error-text'), 'camera: black level value 2 is empty or not a number');
  await page.click('#error-close');
  await page.fill('fieldset[data-camera="black_level"] label:nth-child(3) input', '0');
  await page.fill('fieldset[data-camera="gamma"] input', '0');
  await page.click('#camera-apply');
  await page.waitForSelector('#error:not([hidden])');
  assert.match(await page.textContent('#error-text'), /gamma must be a positive number/);
  await shot(page, 'camera-invalid');
  assert.equal(await page.textContent('#camera-source'), 'edited');
  assert.deepEqual(await savedCamera(page), applied, 'an invalid camera changed the camera');
  assert.deepEqual(await pixels(page, VIEW), before, 'an invalid camera changed the view');
  assert.deepEqual(page.errors, []);
  await page.close();
});
