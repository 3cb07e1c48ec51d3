// The lab log in the page: every session kept as a run in the browser's storage, across reloads;
// the runs table filters, opens, compares, exports (the CLI's zip format, checked with the CLI),
// imports and deletes; a full storage quota says so and the session's results stay.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { launch, openLab, root, runSession, shot, startServer } from './harness.mjs';

const cli = join(root, 'target', 'release', 'lens2logit');
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

async function tick(page, names) {
  for (const box of await page.$$('#runs-table input[type=checkbox]')) await box.uncheck();
  for (const name of names) await page.check(`#runs-table tr:has(td:text-is("${name}")) input`);
}

const banner = async (page) => {
  await page.waitForSelector('#error:not([hidden])', { timeout: 60_000 });
  return page.textContent('#error-text');
};

test('sessions are kept as runs across reloads; the runs table filters, opens, compares, exports, imports and deletes', async () => {
  const page = await openLab(browser, `${server.url}?n=16&size=32&steps=3&batch=4`);
  await runSession(page, { name: 'first synthesis', mode: 'synthesis' });
  await runSession(page, { name: 'joint tuning', mode: 'optimisation' });

  await page.reload();
  await page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 });
  await page.waitForSelector('body[data-runs="2"]');
  const names = await page.$$eval('#runs-table tr', (rows) => rows.slice(1).map((r) => r.cells[1].textContent));
  assert.deepEqual(names, ['joint tuning', 'first synthesis'], 'newest first');
  assert.match(await page.textContent('#runs-storage'), /^2 runs; [\d.]+ MB of [\d.]+ MB used/);

  await page.selectOption('#runs-mode', 'optimisation');
  await page.waitForSelector('body[data-runs="1"]');
  await page.selectOption('#runs-mode', '');
  await page.waitForSelector('body[data-runs="2"]');

  await tick(page, ['first synthesis', 'joint tuning']);
  await page.click('#runs-compare');
  await page.waitForSelector('body[data-compared="2"]');
  const columns = await page.$$eval('#run-view table.compare tr:first-child th', (th) => th.map((t) => t.textContent));
  assert.deepEqual(columns.slice(1).sort(), ['first synthesis', 'joint tuning']);
  const rows = await page.$$eval('#run-view table.compare th[scope=row]', (th) => th.map((t) => t.textContent));
  assert.ok(rows.includes('val_accuracy') && rows.includes('mode'), `compare rows: ${rows}`);
  const series = await page.$$eval('#run-view .chart-key li', (li) => li.map((l) => l.textContent));
  assert.ok(series.some((s) => s.startsWith('first synthesis: ')) && series.filter((s) => s.startsWith('joint tuning: ')).length === 2, `series: ${series}`);

  await tick(page, ['first synthesis']);
  await page.click('#runs-open');
  await page.waitForSelector('body[data-opened-run]');
  assert.equal(await page.$$eval('#run-view table.drift tr', (r) => r.length), 8, 'the drift table as it was');
  assert.equal((await page.$$('#run-view .strip canvas')).length, 10, 'the gradient snapshot and stage outputs as they were');
  const gif = page.waitForEvent('download');
  await page.click('#run-view button:text-is("Timeline (GIF)")');
  assert.equal(readFileSync(await (await gif).path()).subarray(0, 6).toString(), 'GIF89a');
  await shot(page, 'runs-open');

  // the export is the CLI's run zip: `lens2logit runs show` reads it, `runs import` unpacks it
  const download = page.waitForEvent('download');
  await page.click('#runs-export');
  const zip = await (await download).path();
  const shown = execFileSync(cli, ['runs', 'show', zip], { encoding: 'utf8' });
  assert.match(shown, /^run \d{8}-\d{6}-[0-9a-f]{8} \(first synthesis\)/);
  assert.match(shown, /model\.safetensors \(\d+ bytes\)/);
  const dir = mkdtempSync(join(tmpdir(), 'lens2logit-runs-'));
  execFileSync(cli, ['runs', 'import', zip, '--dir', dir], { stdio: 'pipe' });
  const listed = execFileSync(cli, ['runs', 'list', '--dir', dir], { encoding: 'utf8' });
  assert.match(listed, /synthesis .* first synthesis/);

  // delete, then import the zip back
  page.once('dialog', (d) => d.accept());
  await page.click('#runs-delete');
  await page.waitForSelector('body[data-runs="1"]');
  await page.setInputFiles('#runs-import', zip);
  await page.waitForSelector('body[data-runs="2"]');
  await page.setInputFiles('#runs-import', zip);
  assert.match(await banner(page), /is already in the lab log/);

  // a file that is no run zip is refused by name
  const junk = join(dir, 'junk.zip');
  writeFileSync(junk, 'PK\x03\x04 this is not a zip');
  await page.setInputFiles('#runs-import', junk);
  assert.match(await banner(page), /junk\.zip: could not decode a run zip/);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a full storage quota gives a clear message and the session still shows its results', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (err) => page.errors.push(String(err)));
  const cdp = await context.newCDPSession(page);
  await page.goto(`${server.url}?n=16&size=32&steps=2&batch=4`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 });
  await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(server.url).origin, quotaSize: 1024 });
  await page.click('#start');
  await page.waitForSelector('body[data-results="synthesis"]', { timeout: 240_000 });
  assert.match(await banner(page), /storage for this page is full .*the run was not saved/);
  assert.equal(await page.$$eval('#results table.drift tr', (r) => r.length), 8);
  assert.deepEqual(page.errors, []);
  await context.close();
});

/** A free TCP port on 127.0.0.1. */
const freePort = () => new Promise((resolve) => {
  const probe = createServer().listen(0, '127.0.0.1', () => {
    const { port } = probe.address();
    probe.close(() => resolve(port));
  });
});

/** A real `mlflow server` (SQLite, artifacts served) that lets the page's origin call it. */
async function startMlflow(pageOrigin) {
  const mlflow = process.env.LENS2LOGIT_MLFLOW;
  assert.ok(mlflow, 'LENS2LOGIT_MLFLOW names no mlflow executable: run scripts/test.sh, which installs it');
  const dir = mkdtempSync(join(tmpdir(), 'lens2logit-mlflow-'));
  const port = await freePort();
  const child = spawn(mlflow, ['server', '--backend-store-uri', `sqlite:///${dir}/mlflow.db`,
    '--artifacts-destination', join(dir, 'artifacts'), '--host', '127.0.0.1', '--port', String(port),
    '--workers', '1', '--cors-allowed-origins', pageOrigin], { stdio: 'ignore', detached: true });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 240; i++) {
    try {
      if ((await fetch(`${url}/health`)).ok) return { url, stop: () => process.kill(-child.pid) };
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 500));
  }
  process.kill(-child.pid);
  throw new Error('mlflow server did not answer /health within 2 minutes');
}

test('with a tracking server set, a session is logged to a real MLflow server and comes back with the CLI', async () => {
  const mlflow = await startMlflow(new URL(server.url).origin);
  try {
    const page = await openLab(browser, `${server.url}?n=16&size=32&steps=2&batch=4&mlflow=${encodeURIComponent(mlflow.url)}&mlflow-experiment=page-tests`);
    await runSession(page, { name: 'logged from the page', mode: 'synthesis' });
    await page.waitForSelector('body[data-mlflow-logged="1"]', { timeout: 120_000 });
    const status = await page.textContent('#mlflow-status');
    const [, mlflowRun] = /as MLflow run ([0-9a-f]+)/.exec(status) ?? [];
    assert.ok(mlflowRun, status);
    const dir = mkdtempSync(join(tmpdir(), 'lens2logit-runs-'));
    execFileSync(cli, ['runs', 'import', '--mlflow', mlflow.url, '--run', mlflowRun, '--dir', dir], { stdio: 'pipe' });
    const listed = execFileSync(cli, ['runs', 'list', '--dir', dir], { encoding: 'utf8' });
    assert.match(listed, /synthesis .* logged from the page/);

    // a server that is down: a clear message, and the run stays in the lab log
    mlflow.stop();
    await runSession(page, { name: 'not logged', mode: 'synthesis' });
    assert.match(await banner(page), /^cannot reach the MLflow tracking server at http:\/\/127\.0\.0\.1:\d+ .*: Failed to fetch \(run \S+ stays in the lab log/);
    assert.equal(await page.getAttribute('body', 'data-runs'), '2');
    assert.deepEqual(page.errors, []);
    await page.close();
  } finally {
    try { mlflow.stop(); } catch { /* stopped */ }
  }
});
