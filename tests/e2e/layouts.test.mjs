// The record in every layout the lab reads (tests/support/fixtures.rs: per-dataset zips without
// prefixes, zips inside zips, labels and masks as files of the record, full DNG images with full
// masks, flat processed views), the record inspected, and a user's own camera raws dropped in.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launch, lit, openLab, openPage, shot, startZenodoLike } from './harness.mjs';

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

const lab = (mode, dataset, extra = '') =>
  `${server.url}?source=zenodo&dataset=${dataset}&limit=64&zenodo=${encodeURIComponent(`${server.url}${mode}`)}${extra}`;

const ready = (page) => page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 });
const tiles = (page) => page.$$eval('#tiles button', (b) => b.length);
const badges = (page) => page.$$eval('#tiles .badge', (b) => b.map((x) => x.textContent));
/** Whether the page loaded the DNG module (rawler), which only DNG work needs. */
const dngModule = (page) => page.requested.some((url) => /\/pkg\/dng\/.*\.wasm$/.test(url));

for (const [mode, rule] of [['bare', "the archive's name"], ['nested', "the archive's name"], ['toplevel', 'the tile extension']]) {
  test(`a record of ${mode} archives gives the same microscopy tiles and labels, and says how it decided`, async () => {
    const page = await openPage(browser, lab(mode, 'microscopy'));
    await ready(page);
    // 10 tiles of the classes kept (a limit draws from the labelled tiles), each with its class
    assert.equal(await tiles(page), 10);
    assert.equal((await badges(page)).length, 10);
    const log = await page.textContent('#data-log');
    assert.match(log, new RegExp(`tiles: microscopy at 100% \\(dataset from ${rule}\\)`), log);
    assert.match(log, /class-balanced sample \(seed \d+\) of 10 of 10 labelled tiles: LYT 5\/5, MON 5\/5/, log);
    assert.match(await page.textContent('#camera-source'), /preset microscopy/);
    await page.waitForSelector('body[data-views="12"]');
    assert.equal(dngModule(page), false, 'microscopy tiles loaded the DNG module');
    assert.deepEqual(page.errors, []);
    await page.close();
  });
}

test('drone tiles and masks from zips inside a zip', async () => {
  const page = await openPage(browser, lab('nested', 'drone'));
  await ready(page);
  assert.equal(await tiles(page), 4);
  const log = await page.textContent('#data-log');
  assert.match(log, /4 {2}masks of tiles/, log);
  assert.match(log, /2 {2}archives inside/, log);
  assert.match(await page.textContent('#camera-source'), /preset drone/);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test("full DNG images are cut into the paper's tiles, for segmentation and classification from the masks", async () => {
  const segment = await openPage(browser, lab('full', 'drone'));
  await ready(segment);
  // the tiles with a car, numbered anew per image
  assert.equal(await tiles(segment), 3);
  assert.ok(dngModule(segment), `full DNG images without the DNG module: ${segment.requested}`);
  await segment.close();

  const classify = await openPage(browser, lab('full', 'drone', '&zenodo-task=classification'));
  await ready(classify);
  // 8 tiles, the one with a car share between 0 and 1% left out; balanced per image as in the
  // paper: one car tile and one empty one from each image
  assert.equal(await tiles(classify), 4);
  const classes = await badges(classify);
  assert.equal(classes.filter((c) => c === 'car').length, 2, `${classes}`);
  assert.equal(classes.filter((c) => c === 'no car').length, 2, `${classes}`);
  await classify.waitForSelector('body[data-views="12"]');
  await shot(classify, 'layouts-full-classification');
  assert.deepEqual(classify.errors, []);
  await classify.close();
});

test('the paper views of a flat folder show beside ours', async () => {
  const page = await openPage(browser, lab('flatviews', 'drone'));
  await page.waitForSelector('body[data-paper-views="2"]', { timeout: 120_000 });
  const captions = await page.$$eval('#paper-views figcaption', (f) => f.map((x) => x.textContent));
  assert.deepEqual(captions, ['bilinear-sharpening_filter-gaussian_denoising', 'bilinear-sharpening_filter-median_denoising']);
  await page.close();
});

test('"Inspect record" lists the files and what each archive holds', async () => {
  const page = await openPage(browser, lab('nested', 'microscopy'));
  await ready(page);
  await page.click('#inspect-record');
  await page.waitForFunction(() => /archives inside/.test(document.getElementById('record-report').textContent), null, { timeout: 60_000 });
  const report = await page.textContent('#record-report');
  assert.match(report, /record 5235536 at .*: 2 files/);
  assert.match(report, /Raw-Microscopy\.zip {2}\d+ bytes {2}md5:[0-9a-f]{32}/);
  assert.match(report, /12 {2}tiles: microscopy at 50%/);
  assert.match(report, /4 {2}masks of tiles/);
  assert.equal(await page.isHidden('#record-box'), false);
  await shot(page, 'layouts-inspect-record');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test("a user's own DNGs: their camera, the 12 views and a session on their tiles", async () => {
  const photos = await Promise.all(['beach.dng', 'forest.dng'].map(async (name) => ({
    name,
    mimeType: 'image/x-adobe-dng',
    buffer: Buffer.from(await (await fetch(`${server.url}photos/${name}`)).arrayBuffer()),
  })));
  const page = await openLab(browser, `${server.url}?n=8&size=32&steps=2&batch=2&mode=synthesis`);
  await page.selectOption('#source', 'files');
  await page.setInputFiles('#files', photos);
  await page.click('#load');
  // the camera comes from the DNG's metadata, shown and editable
  await page.waitForFunction(() => /DNG metadata \((beach|forest)\.dng\)/.test(document.getElementById('camera-source').textContent), null, { timeout: 120_000 });
  assert.equal(await tiles(page), 4);
  assert.ok(dngModule(page), `dropped DNGs without the DNG module: ${page.requested}`);
  assert.equal(await page.isHidden('#camera-ask'), true);
  await page.waitForSelector('body[data-views="12"]', { timeout: 120_000 });
  assert.ok((await lit(page, '#stages figure:nth-child(8) canvas')) > 0.9, 'the rendered tile is blank');
  const classes = await badges(page);
  assert.deepEqual([...new Set(classes)].sort(), ['beach', 'forest']);
  await page.click('#start');
  await page.waitForSelector('body[data-results="synthesis"]', { timeout: 600_000 });
  assert.equal(await page.$$eval('table.drift tr', (r) => r.length), 8, "drift table: header + the datasets' 7 intensities");
  await shot(page, 'layouts-dng-session');
  assert.deepEqual(page.errors, []);
  await page.close();
});
