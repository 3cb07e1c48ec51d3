// Hostile input: URL states with huge, zero, negative and non-numbers, a 2x2 tile, a truncated
// TIFF and a zip bomb. Each ends with a message that names what was wrong (the lab's limit where
// one was passed), the worker alive, and a page that goes on working.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { launch, openPage, root, shot, startServer } from './harness.mjs';

let server;
let browser;
let files;
before(async () => {
  server = await startServer();
  browser = await launch({ webgpu: false });
  files = mkdtempSync(join(tmpdir(), 'lens2logit-hostile-'));
  execFileSync('python3', [join(root, 'tests', 'e2e', 'fixtures', 'hostile_files.py'), files]);
});
after(async () => {
  await browser.close();
  server.stop();
});

/** The banner's text, once it shows. */
async function banner(page) {
  await page.waitForSelector('#error:not([hidden])', { timeout: 120_000 });
  return page.textContent('#error-text');
}

/** The same worker still answers: a small synthetic set loads and renders. */
async function stillWorks(page) {
  await page.selectOption('#source', 'synthetic');
  await page.fill('#n', '8');
  await page.fill('#size', '32');
  await page.fill('#seed', '0');
  await page.click('#load');
  await page.waitForFunction(() => document.getElementById('tiles').children.length === 8, null, { timeout: 60_000 });
  assert.equal(await page.isHidden('#error'), true, 'the banner cleared');
}

const urls = [
  ['?size=8192&n=64', /synthetic tile side \(px\) 8192 is outside the lab's limits \(16 to 1024\)/],
  ['?n=100000', /number of synthetic tiles 100000 is outside the lab's limits \(4 to 4096\)/],
  ['?n=0', /number of synthetic tiles 0 is outside the lab's limits/],
  ['?n=-5', /number of synthetic tiles -5 is not a whole number/],
  // a number input turns what is not a number into '' (0)
  ['?size=NaN', /synthetic tile side \(px\) 0 is outside the lab's limits/],
  ['?seed=-1', /seed -1 is not a whole number/],
];
for (const [query, message] of urls) {
  test(`the URL state ${query} is refused by name and the page goes on`, async () => {
    const page = await openPage(browser, `${server.url}${query}`);
    assert.match(await banner(page), message);
    await stillWorks(page);
    assert.deepEqual(page.errors, []);
    await page.close();
  });
}

const sessions = [
  ['batch=0', /the batch 0 is outside the lab's limits \(1 to 1024\)/],
  ['batch=-2', /the batch -2 is not a whole number/],
  ['steps=NaN', /the steps 0 is outside the lab's limits \(1 to 1000000\)/],
  ['steps=1e12', /the steps 1000000000000 is outside the lab's limits/],
  ['lr=Infinity', /the learning rate 0 is outside the lab's limits/],
  ['lambda=-1&mode=forensics', /lambda -1 is outside the lab's limits/],
];
for (const [query, message] of sessions) {
  test(`the session settings ${query} are refused by name and training goes on`, async () => {
    const page = await openPage(browser, `${server.url}?n=8&size=32&${query}`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 });
    await page.click('#start');
    assert.match(await banner(page), message);
    await page.waitForSelector('#start:not([disabled])');
    assert.doesNotMatch(await page.textContent('#error-text'), /crashed/);
    await stillWorks(page);
    await page.close();
  });
}

const drops = [
  ['tiny.png', /tiny.png: a 2x2 tile is outside the 8x8 to 8192x8192 px the lab loads/],
  ['truncated.tif', /truncated\.tif/],
  ['bomb.zip', /bomb\.zip: no tile could be read \(.*inflates past \d+ bytes/],
  ['hostile.dng', /hostile\.dng: DNG: /],
];
for (const [file, message] of drops) {
  test(`the dropped file ${file} is refused with a reason and the page goes on`, async () => {
    const page = await openPage(browser, `${server.url}?n=8&size=32`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 });
    await page.selectOption('#source', 'files');
    await page.setInputFiles('#files', [join(files, file)]);
    await page.click('#load');
    assert.match(await banner(page), message);
    await shot(page, `hostile-${file.replace('.', '-')}`);
    await stillWorks(page);
    await page.close();
  });
}
