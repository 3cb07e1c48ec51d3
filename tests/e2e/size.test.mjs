// The size budget: each of the page's modules, as the lab's server sends it to a browser that
// accepts brotli, is at most 1.2 MB. A module that passes it fails this test; the README's sizes
// table says what each holds and what was moved out (the SQL and DNG modules load on first use).

import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { startServer } from './harness.mjs';

const BUDGET_BYTES = 1_200_000;
const MODULES = [
  'pkg/lens2logit_bg.wasm',
  'pkg/threads/lens2logit_bg.wasm',
  'pkg/labdb/lens2logit_labdb_bg.wasm',
  'pkg/dng/lens2logit_dng_bg.wasm',
];

let server;
before(async () => { server = await startServer(); });
after(() => server.stop());

/** The bytes the server sends for `path` to a client accepting brotli, and their encoding. */
const served = (path) => new Promise((resolve, reject) => {
  request(new URL(path, server.url), { headers: { 'accept-encoding': 'br' } }, (response) => {
    let bytes = 0;
    response.on('data', (chunk) => { bytes += chunk.length; });
    response.on('end', () => resolve({ status: response.statusCode, encoding: response.headers['content-encoding'], bytes }));
  }).on('error', reject).end();
});

test('every page module is sent brotli-compressed within its 1.2 MB budget', async () => {
  const sizes = [];
  for (const path of MODULES) {
    const { status, encoding, bytes } = await served(path);
    assert.equal(status, 200, `${path}: HTTP ${status}`);
    assert.equal(encoding, 'br', `${path} was not sent brotli-compressed`);
    sizes.push(`${path}: ${bytes} bytes`);
    assert.ok(bytes <= BUDGET_BYTES, `${path} is ${bytes} bytes brotli, over its budget of ${BUDGET_BYTES}`);
  }
  console.log(sizes.join('\n'));
});
