// One 12 x 12 table from rows trained in different places: a row trained in the page (its
// synthesis.json) and the other eleven by the CLI's row jobs gather into one table, because the
// core builds every row's settings, dataset label and table the same way for both.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { launch, openLab, root, startServer } from './harness.mjs';

let server;
let browser;
before(async () => {
  server = await startServer();
  browser = await launch({ webgpu: false });
});
after(async () => {
  await browser.close();
  server.stop();
});

test('a row trained in the page and rows trained by the CLI gather into one 12 x 12 table', async () => {
  const cli = join(root, 'target', 'release', 'lens2logit');
  const views = execFileSync(cli, ['experiment', 'views']).toString().trim().split('\n');
  assert.equal(views.length, 12);
  const settings = { n: '16', size: '16', steps: '2', batch: '4', seed: '3' };
  const dir = mkdtempSync(join(tmpdir(), 'lens2logit-gather-'));

  const query = new URLSearchParams({ ...settings, source: 'synthetic', task: 'classification', mode: 'synthesis', device: 'cpu', 'train-view': views[0] });
  const page = await openLab(browser, `${server.url}?${query}`);
  await page.click('#run-experiment');
  await page.waitForSelector('body[data-experiment="done"]', { timeout: 300_000 });
  const download = page.waitForEvent('download');
  await page.click('#experiment button:text("synthesis.json")');
  mkdirSync(join(dir, 'page'));
  writeFileSync(join(dir, 'page', 'synthesis.json'), readFileSync(await (await download).path()));
  assert.deepEqual(page.errors, []);
  await page.close();

  const flags = Object.entries(settings).flatMap(([k, v]) => [`--${k}`, v]);
  const rows = views.slice(1).map((view, i) => {
    const out = join(dir, `cli_${i}`);
    execFileSync(cli, ['experiment', 'synthesis', '--data', 'synthetic', '--task', 'classification', ...flags,
      '--backend', 'cpu', '--train-view', view, '--out', out], { stdio: 'pipe' });
    return out;
  });
  execFileSync(cli, ['experiment', 'gather', join(dir, 'page'), ...rows, '--out', join(dir, 'all')], { stdio: 'pipe' });
  const table = readFileSync(join(dir, 'all', 'synthesis_12x12.csv'), 'utf8').trim().split('\n');
  assert.equal(table.length, 13, table.join('\n'));
  assert.ok(table[1].startsWith(`${views[0]},`), 'the page\'s row is the first training view\'s');
});
