// 1. Data: the source's controls, loading tiles (synthetic, the colour chart, Zenodo streamed or
// from the browser's cache, the user's files or a drop), the record inspector, the fetch events.

import { showCamera } from './camera.js';
import { $, dropZone } from './dom.js';
import { refreshParams } from './processing.js';
import { saveState, values } from './state.js';
import { selectTile } from './static-pipeline.js';
import { guard, setStatus, showError } from './status.js';
import { addTile, renderTiles } from './tiles.js';
import { call, listeners, reachOrigins } from './worker-client.js';

// data-for names the sources a control belongs to; data-dataset, the Zenodo dataset
export const sourceControls = () => {
  const source = $('source').value;
  for (const el of document.querySelectorAll('[data-for]')) {
    el.hidden = !el.dataset.for.split(' ').includes(source) || (el.dataset.dataset !== undefined && el.dataset.dataset !== $('dataset').value);
  }
};

/** A note on the data being loaded (how it is sampled, how the record is laid out). */
function dataNote(message) {
  const item = document.createElement('li');
  item.textContent = message;
  $('data-log').append(item);
  $('data-log').hidden = false;
}

const loaders = {
  synthetic: () => call('loadSynthetic', { task: $('task').value, n: Number($('n').value), seed: Number($('seed').value), size: Number($('size').value) }),
  chart: () => call('loadChart', { size: 256 }),
  async zenodo() {
    await reachOrigins('the Zenodo mirror changed');
    // Raw-Drone offers both tasks; Raw-Microscopy only classification (the core's default)
    const args = {
      record: $('record').value, dataset: $('dataset').value, intensity: Number($('intensity').value),
      task: $('dataset').value === 'drone' ? $('zenodo-task').value : undefined,
    };
    const cached = await call('loadCached', args);
    if (cached.count > 0) return { ...cached, note: "from the browser's cache" };
    $('tiles').replaceChildren();
    $('cancel-load').disabled = false;
    try {
      return await call('streamZenodo', { ...args, base: $('zenodo').value, limit: Number($('limit').value) || null, seed: Number($('seed').value) });
    } finally {
      $('cancel-load').disabled = true;
      $('load-progress').hidden = true;
    }
  },
  async files() {
    const files = [...$('files').files];
    if (!files.length) throw new Error('Choose tiles or a zip of tiles first (or drop them on the box).');
    return loadFiles(files);
  },
};

async function loadFiles(files) {
  let result;
  for (const file of files) {
    const bytes = new Uint8Array(await file.arrayBuffer());
    result = await call('loadFile', { name: file.name, bytes }, [bytes.buffer]);
  }
  return result;
}

/** Loads the tiles the data controls name, then shows the camera, the parameters and a tile. */
export const load = guard(async () => {
  $('error').hidden = true;
  $('data-log').replaceChildren();
  $('data-log').hidden = true;
  setStatus('Loading tiles...');
  const result = await loaders[$('source').value]().catch((error) => {
    setStatus('No tiles loaded: see the message above.');
    throw error;
  });
  $('task').value = result.task;
  values.tile = Math.min(values.tile, result.count - 1);
  await renderTiles(result.count);
  await refreshParams();
  await showCamera();
  await selectTile(Math.max(values.tile, 0));
  setStatus(`${result.count} tiles loaded${result.note ? ` ${result.note}` : ''}`);
  document.body.dataset.ready = 'true';
  saveState();
});

export function wireData() {
  $('source').onchange = () => { sourceControls(); saveState(); };
  $('dataset').onchange = () => { sourceControls(); saveState(); };

  listeners.fetch = (e) => {
    const bar = $('load-progress');
    if (e.type === 'archive') { bar.hidden = false; bar.max = e.size || 1; bar.value = 0; setStatus(e.ranged ? `Reading ${e.key} by random access...` : `Streaming ${e.key}...`); }
    if (e.type === 'progress') { bar.max = e.total || bar.max; bar.value = e.read; }
    if (e.type === 'tile') { addTile(e.index, e.name, e.class); $('tile-count').textContent = `${e.index + 1} tiles`; }
    if (e.type === 'labels') setStatus(`Labels for ${e.count} tiles`);
    if (e.type === 'warning') showError(e.message);
    if (e.type === 'sample') dataNote(e.message);
    if (e.type === 'layout') dataNote([e.key, ...e.lines].join('\n'));
    if (e.type === 'discard') { showError(e.reason); renderTiles(e.remaining); }
  };

  $('load').onclick = load;
  $('cancel-load').onclick = () => call('cancelFetch');
  $('clear-cache').onclick = guard(async () => { await call('clearCache'); setStatus('Cache cleared'); });

  $('inspect-record').onclick = guard(async () => {
    $('error').hidden = true;
    setStatus('Inspecting the record...');
    const restarted = await reachOrigins('the Zenodo mirror changed');
    $('cancel-load').disabled = false;
    try {
      const report = await call('inspectRecord', { base: $('zenodo').value, record: $('record').value, dataset: $('dataset').value });
      $('record-report').textContent = report;
      $('record-box').hidden = false;
      setStatus('Record inspected: the report is under the data controls');
    } finally {
      $('cancel-load').disabled = true;
      // a worker that may reach the mirror took over: it holds no tiles yet
      if (restarted) await load();
    }
  });
  listeners.inspect = (what) => setStatus(`Inspecting the record: ${what}`);
  $('copy-report').onclick = guard(async () => {
    await navigator.clipboard.writeText($('record-report').textContent);
    setStatus('Report copied');
  });

  dropZone($('drop'), guard(async (files) => {
    const result = await loadFiles(files);
    await renderTiles(result.count);
    await showCamera();
    await selectTile(0);
    setStatus(`${result.count} tiles loaded`);
  }));
}
