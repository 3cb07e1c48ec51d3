// The lab log's SQL box: runs made by short sessions in the page answer the example questions,
// the same runs exported to the CLI give the same answers; a write and a runaway query are refused
// with a message; the database follows a delete and an import. Its module (SQLite) loads on the
// box's first use; the database is kept in OPFS for the next visit, and a second tab, which
// cannot share it, answers from one in memory.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { launch, openLab, root, runSession, shot, startServer, viewport } from './harness.mjs';

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

/** The SQL box's answer to `sql`: its status line, and its CSV where it answered. */
async function ask(page, sql) {
  await page.evaluate(() => { delete document.body.dataset.sql; });
  await page.fill('#sql', sql);
  await page.click('#sql-run');
  await page.waitForSelector('body[data-sql]', { timeout: 60_000 });
  const status = await page.textContent('#sql-status');
  if (await page.getAttribute('body', 'data-sql') === 'error') return { status };
  const download = page.waitForEvent('download');
  await page.click('#sql-csv');
  return { status, csv: readFileSync(await (await download).path(), 'utf8') };
}

test('the example questions answer in the page and the CLI from the same runs; writes and runaways are refused', async () => {
  // one browser profile: the pages share the run store and OPFS, as tabs do
  const context = await browser.newContext({ viewport });
  const page = await openLab(context, `${server.url}?n=16&size=16&steps=2&batch=4&attack-steps=1&device=cpu`);
  await runSession(page, { mode: 'synthesis', seed: 1 });
  await runSession(page, { mode: 'synthesis', seed: 2 });
  await runSession(page, { mode: 'forensics', seed: 1 });

  // the runs, as the CLI's run folders
  const dir = mkdtempSync(join(tmpdir(), 'lens2logit-sql-'));
  const zips = await page.evaluate(async () => {
    const { getZip, listRuns } = await import('./runs-store.js');
    const out = [];
    for (const meta of await listRuns()) out.push([meta.id, Array.from(new Uint8Array(await getZip(meta.id)))]);
    return out;
  });
  for (const [id, bytes] of zips) {
    writeFileSync(join(dir, `${id}.zip`), Buffer.from(bytes));
    execFileSync(cli, ['runs', 'import', join(dir, `${id}.zip`), '--dir', join(dir, 'runs')], { stdio: 'pipe' });
  }
  const cliCsv = (sql) => execFileSync(cli, ['runs', 'sql', '--dir', join(dir, 'runs'), '--format', 'csv', sql], { stdio: 'pipe' }).toString();

  const requested = [];
  page.on('request', (request) => requested.push(request.url()));
  const sqlModule = () => requested.filter((url) => url.includes('/pkg/labdb/'));
  const examples = await page.$$eval('#sql-example option', (options) => options.slice(1).map((o) => o.value));
  assert.equal(examples.length, 3);
  for (const [i, sql] of examples.entries()) {
    await page.selectOption('#sql-example', { index: i + 1 });
    assert.equal(await page.inputValue('#sql'), sql);
    if (i === 0) assert.deepEqual(sqlModule(), [], 'no SQL module before the first query');
    const { status, csv } = await ask(page, sql);
    assert.ok(csv, `example ${i + 1}: ${status}`);
    if (i === 0) {
      assert.ok(sqlModule().some((url) => url.endsWith('.wasm')), `the SQL module on first use: ${requested}`);
      assert.match(status, /database kept in this browser \(OPFS\)/);
      assert.equal(await page.getAttribute('body', 'data-sql-added'), '3');
    }
    assert.ok(csv.trim().split('\n').length >= 2, `example ${i + 1} has rows: ${csv}`);
    assert.equal(csv, cliCsv(sql), `example ${i + 1}: the page and the CLI agree`);
  }
  // the numbers are the runs': the first question's drop from the runs' own summaries
  const runs = await page.evaluate(async () => {
    const { listRuns } = await import('./runs-store.js');
    return listRuns();
  });
  const view = runs.find((m) => m.mode === 'synthesis').view;
  const { csv } = await ask(page, `SELECT metric FROM drift WHERE test_view = '${view}' AND intensity = 100 ORDER BY run_id`);
  assert.equal(csv.trim().split('\n').length, 3, csv);
  const rows = (await page.$$eval('#sql-answer tr', (trs) => trs.length)) - 1;
  assert.equal(rows, 2);

  assert.match((await ask(page, 'DELETE FROM runs')).status, /only answers queries/);
  assert.match((await ask(page, 'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n')).status, /ran longer than 5\.0 s and was stopped/);
  assert.match((await ask(page, 'SELECT x FROM nowhere')).status, /no such table: nowhere/);

  // a delete and an import
  const count = async () => (await ask(page, 'SELECT count(*) AS n FROM runs')).csv;
  assert.equal(await count(), 'n\n3\n');
  page.once('dialog', (dialog) => dialog.accept());
  const [first] = zips;
  await page.check(`#runs-table tr[data-run="${first[0]}"] input`);
  await page.click('#runs-delete');
  await page.waitForSelector('body[data-runs="2"]');
  assert.equal(await count(), 'n\n2\n');
  await page.setInputFiles('#runs-import', join(dir, `${first[0]}.zip`));
  await page.waitForSelector('body[data-runs="3"]');
  assert.equal(await count(), 'n\n3\n');
  assert.deepEqual(page.errors, []);

  // a second tab cannot share the kept database while this one holds it: it answers from memory
  const tab = await openLab(context, server.url);
  const beside = await ask(tab, 'SELECT count(*) AS n FROM runs');
  assert.equal(beside.csv, 'n\n3\n');
  assert.match(beside.status, /database in memory for this visit \(OPFS refused it/);
  await tab.close();
  await page.close();

  // the next visit finds the runs kept: nothing to add again
  const next = await openLab(context, server.url);
  const kept = await ask(next, 'SELECT count(*) AS n FROM runs');
  assert.equal(kept.csv, 'n\n3\n');
  assert.match(kept.status, /database kept in this browser \(OPFS\)/);
  assert.equal(await next.getAttribute('body', 'data-sql-added'), '0');
  assert.deepEqual([...page.errors, ...tab.errors, ...next.errors], []);
  await context.close();
});

test('a SQL module not built yet (scripts/serve.sh builds it after serving the page): the box says so, and the next query loads it', async () => {
  const pkg = mkdtempSync(join(tmpdir(), 'lens2logit-pkg-'));
  const labdb = join(root, 'pkg', 'labdb');
  cpSync(join(root, 'pkg'), pkg, { recursive: true, filter: (path) => !path.startsWith(labdb) });
  const early = await startServer(['--pkg', pkg]);
  const context = await browser.newContext({ viewport });
  try {
    const page = await openLab(context, early.url);
    const before = await ask(page, 'SELECT count(*) AS n FROM runs');
    assert.equal(before.csv, undefined);
    await shot(page, 'sql-module-not-built');
    assert.match(before.status, /SQL module \(pkg\/labdb\/\) could not be loaded .*scripts\/serve\.sh builds it/);
    // serve.sh moves the module into place once built; the page is not reloaded
    cpSync(labdb, join(pkg, 'labdb'), { recursive: true });
    const built = await ask(page, 'SELECT count(*) AS n FROM runs');
    assert.equal(built.csv, 'n\n0\n', built.status);
  } finally {
    await context.close();
    early.stop();
    rmSync(pkg, { recursive: true, force: true });
  }
});
