// The datasets' size in the page: a 256 px small-U-Net session with batch 8 runs; one that would
// not fit in the page's memory is refused before it starts, with the largest batch that fits, and
// the worker stays alive.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { inWorker, launch, openLab, startServer } from './harness.mjs';

let server;
before(async () => { server = await startServer(); });
after(() => server.stop());

const session = (batch) => ({ mode: 'synthesis', model: 'unet_small', steps: 2, lr: 1e-3, batch, seed: 1, snapshotEvery: 0, intensities: [100] });

test('a 256 px small U-Net session with batch 8 runs; batch 64 is refused with the batch that fits', async () => {
  const browser = await launch({ webgpu: false });
  try {
    const page = await openLab(browser, `${server.url}?backend=cpu`);
    const results = await inWorker(page, [
      ['init', { preferGpu: false }],
      ['loadSynthetic', { task: 'segmentation', n: 12, seed: 2, size: 256 }],
      ['runJob', { options: session(8) }],
    ]);
    const { finished, summary } = results[2];
    assert.equal(finished, true);
    assert.equal(Object.values(summary.curves)[0].length, 2);
    assert.equal(Object.keys(summary.views).length, 12, 'the drift table is complete');

    const refused = await inWorker(page, [
      ['init', { preferGpu: false }],
      ['loadSynthetic', { task: 'segmentation', n: 12, seed: 2, size: 256 }],
      ['runJob', { options: session(64) }],
    ]).then(() => null, (e) => e.message);
    assert.match(refused ?? '', /unet_small session on 256x256 px tiles with batch 64 needs about [\d.]+ GB, more than the [\d.]+ GB this page can use: use a batch of at most \d+/);
    const fits = Number(/at most (\d+)/.exec(refused)[1]);
    assert.ok(fits >= 8 && fits < 64, `largest batch ${fits}`);
  } finally {
    await browser.close();
  }
});
