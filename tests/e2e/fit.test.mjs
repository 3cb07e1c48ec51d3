// The page fits a laptop (1280 px) and a phone (390 px) before, during and after a session: no
// element's right edge passes its panel's unless an ancestor scrolls sideways, the page itself
// never scrolls sideways, wide tables scroll inside their panel with their first column kept in
// view and a hint that says so, and long status lines wrap.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launch, openLab, shot, startServer } from './harness.mjs';

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

/** What sticks out: each outermost element past its panel's right edge with no ancestor between that scrolls. */
const sticksOut = (page) => page.evaluate(() => {
  const name = (el) => el.id ? `#${el.id}` : `${el.tagName.toLowerCase()}${el.className && typeof el.className === 'string' ? `.${el.className.trim().split(/\s+/).join('.')}` : ''}`;
  const clips = (el) => ['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(el).overflowX);
  const found = [];
  const page = document.documentElement.scrollWidth - window.innerWidth;
  if (page > 0) found.push(`the page scrolls sideways by ${page} px`);
  for (const panel of document.querySelectorAll('.panel, header.top, #status, #error')) {
    const box = panel.getBoundingClientRect();
    if (box.width === 0) continue;
    if (box.right > window.innerWidth + 0.5) found.push(`${name(panel)} passes the window by ${Math.round(box.right - window.innerWidth)} px`);
    for (const el of panel.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if ((r.width === 0 && r.height === 0) || r.right <= box.right + 0.5) continue;
      let up = el.parentElement;
      let inside = false;
      while (up && up !== panel) {
        if (clips(up)) inside = true;
        if (up.getBoundingClientRect().right > box.right + 0.5) inside = true;
        up = up.parentElement;
      }
      if (!inside) found.push(`${name(el)} sticks out of ${name(panel)} by ${Math.round(r.right - box.right)} px`);
    }
  }
  return found;
});

/** The tables wider than their scrolling box: whether each shows its hint and keeps its first column in view. */
const wideTables = (page) => page.evaluate(() => [...document.querySelectorAll('.scroll')]
  .filter((box) => box.scrollWidth > box.clientWidth + 1)
  .map((box) => {
    const cell = box.querySelector('tr > :first-child');
    const before = cell.getBoundingClientRect().left;
    box.scrollLeft = box.scrollWidth;
    const after = cell.getBoundingClientRect().left;
    box.scrollLeft = 0;
    const hint = getComputedStyle(box, '::before').content;
    return { table: box.querySelector('table')?.className, hint: box.dataset.overflows === 'true' && hint !== 'none', sticky: Math.abs(after - before) < 1 };
  }));

for (const [width, height] of [[1280, 800], [390, 844]]) {
  test(`nothing sticks out at ${width} px before, during and after a session`, async () => {
    const context = await browser.newContext({ viewport: { width, height } });
    const page = await openLab(context, `${server.url}?n=16&size=32&steps=24&batch=4&device=cpu&mode=synthesis`);
    assert.deepEqual(await sticksOut(page), [], 'before');
    await page.click('#start');
    await page.waitForFunction(() => /left/.test(document.getElementById('train-rate').textContent), null, { timeout: 120_000 });
    assert.deepEqual(await sticksOut(page), [], 'during');
    await page.waitForSelector('body[data-results="synthesis"]', { timeout: 300_000 });
    await page.waitForSelector('body[data-runs="1"]');
    assert.deepEqual(await sticksOut(page), [], 'after');
    const tables = await wideTables(page);
    if (width === 390) assert.ok(tables.some((t) => t.table === 'drift'), `the drift table scrolls at 390 px: ${JSON.stringify(tables)}`);
    for (const t of tables) assert.deepEqual(t, { table: t.table, hint: true, sticky: true });
    await shot(page, `fit-${width}`);
    assert.deepEqual(page.errors, []);
    await context.close();
  });
}
