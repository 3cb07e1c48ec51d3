// UI thread: lays out what the worker computes and forwards the user's choices. No computation
// here: images, histograms, heatmaps, metrics and files all come from the Rust core.

import uPlot from './vendor/uplot/uPlot.esm.js';
import { isolate } from './coi.js';

// on a host that cannot send COOP/COEP, a service worker adds them (one reload, first visit)
await isolate();

const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------ errors and status

function showError(message) {
  $('error-text').textContent = message;
  $('error').hidden = false;
  setStatus('');
}
$('error-close').onclick = () => { $('error').hidden = true; };
const setStatus = (text) => { $('status').textContent = text; };
window.addEventListener('unhandledrejection', (event) => showError(String(event.reason?.message ?? event.reason)));

/** Runs an async UI action; any failure goes to the banner. */
const guard = (fn) => async (...args) => {
  try {
    await fn(...args);
  } catch (error) {
    showError(error.message ?? String(error));
  }
};

// ------------------------------------------------------------------ the worker

let worker = null;
const pending = new Map();
const listeners = {};
let nextId = 0;
let restarts = 0;
/** The origins beyond this page's and Zenodo's that the current worker may connect to (its CSP names them). */
let workerOrigins = [];

/** The origin of a URL the user set (a Zenodo mirror, an MLflow server), where it is neither this page's nor Zenodo's. */
function extraOrigin(base) {
  if (!base) return null;
  try {
    const origin = new URL(base, location.href).origin;
    return origin === location.origin || origin === 'https://zenodo.org' ? null : origin;
  } catch {
    return null;
  }
}

function startWorker(origins) {
  workerOrigins = origins;
  const script = new URL('./worker.js', import.meta.url);
  // the worker streams from Zenodo and logs to MLflow: a mirror or a tracking server elsewhere is
  // named in its policy (see sw.js and lens2logit serve)
  for (const origin of origins) script.searchParams.append('connect', origin);
  worker = new Worker(script, { type: 'module' });
  worker.onerror = (event) => crashed(event.message || 'unknown error');
  worker.onmessage = ({ data }) => {
    if (data.type === 'event') {
      listeners[data.channel]?.(data.data);
      return;
    }
    const request = pending.get(data.id);
    pending.delete(data.id);
    if (data.error !== undefined) request?.reject(new Error(data.error));
    else request?.resolve(data.result);
    if (data.fatal) crashed(data.error);
  };
}

/**
 * A trap in the wasm module (a Rust panic aborts, so does a failed allocation) leaves it
 * unusable: a new worker takes over with the page's settings, which live in the URL.
 */
function stopWorker(reason) {
  worker.terminate();
  for (const request of pending.values()) request.reject(new Error(`the compute worker stopped: ${reason}`));
  pending.clear();
}

function crashed(message) {
  stopWorker(message);
  restarts += 1;
  const note = `The compute worker crashed (${message}).`;
  if (restarts > 3) {
    showError(`${note} It crashed ${restarts} times: reload the page.`);
    return;
  }
  startWorker(workerOrigins);
  guard(async () => {
    await initWorker();
    await load();
    showError(`${note} A new one was started with this page's settings.`);
  })();
}
startWorker(['zenodo', 'mlflow', 'weights-url'].map((k) => extraOrigin(new URLSearchParams(location.search).get(k))).filter(Boolean));
const call = (method, args = {}, transfer = []) => new Promise((resolve, reject) => {
  const id = nextId++;
  pending.set(id, { resolve, reject });
  worker.postMessage({ id, method, args }, transfer);
});

/** The origins the page's settings need the worker to reach (the Zenodo mirror, the MLflow server). */
const wantedOrigins = () => ['zenodo', 'mlflow', 'weights-url'].map((id) => extraOrigin($(id).value)).filter(Boolean);

/**
 * A worker's policy is fixed when it starts: where the settings name an origin it may not reach,
 * a new worker that may takes over. Resolves to whether one did (its tiles are then gone).
 */
async function reachOrigins(reason) {
  const want = wantedOrigins();
  if (want.join(' ') === workerOrigins.join(' ')) return false;
  stopWorker(reason);
  startWorker(want);
  await initWorker();
  return true;
}

// ------------------------------------------------------------------ URL state

const STATE = ['source', 'task', 'n', 'size', 'seed', 'dataset', 'zenodo-task', 'intensity', 'limit', 'zenodo', 'record',
  'debayer', 'sharpening', 'denoising', 'mode', 'model', 'steps', 'lr', 'batch', 'device', 'lambda', 'attack-steps', 'group', 'corruption',
  'freeze-backbone', 'backbone-lr', 'weights-url', 'train-view', 'mlflow', 'experiment'];

/** The controls' bounds, defaults and choices, from the core's description of every setting. */
function applySettings(settings) {
  for (const s of settings) {
    const el = $(s.id);
    if (!el) continue;
    const { range } = s;
    if (range.type === 'choice') {
      const label = (v) => v || 'browser-sized (the task\'s default)';
      el.replaceChildren(...(s.default === null ? [''] : []).concat(range.values).map((v) => new Option(label(v), v)));
    } else {
      Object.assign(el, { min: range.min, max: range.max, step: range.type === 'whole' ? 1 : range.step });
    }
    el.value = s.default ?? '';
  }
}
const url = new URLSearchParams(location.search);
const values = { tile: Number(url.get('tile') ?? 0), params: url.get('params') };

function restoreControls() {
  for (const key of STATE) if (url.has(key) && $(key)) $(key).value = url.get(key);
}

function saveState() {
  const next = new URLSearchParams();
  for (const key of STATE) if ($(key)) next.set(key, $(key).value);
  next.set('tile', values.tile);
  if (values.params) next.set('params', values.params);
  if (url.get('backend')) next.set('backend', url.get('backend'));
  if (url.get('threads')) next.set('threads', url.get('threads'));
  history.replaceState(null, '', `?${next}`);
}

// ------------------------------------------------------------------ images

function draw(canvas, { width, height, rgba }) {
  canvas.width = width;
  canvas.height = height;
  canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(rgba), width, height), 0, 0);
}

function download(name, data, type) {
  const link = document.createElement('a');
  link.href = URL.createObjectURL(data instanceof Blob ? data : new Blob([data], { type }));
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

const zoom = { source: null };
function openZoom(title, canvas) {
  $('zoom-title').textContent = title;
  const big = $('zoom-canvas');
  big.width = canvas.width;
  big.height = canvas.height;
  big.getContext('2d').drawImage(canvas, 0, 0);
  zoom.title = title;
  $('zoom').showModal();
}
$('zoom-close').onclick = () => $('zoom').close();
// charts export through the same dialog: uPlot draws into a canvas
for (const button of document.querySelectorAll('[data-chart]')) {
  button.onclick = () => {
    const canvas = $(button.dataset.chart).querySelector('canvas');
    if (canvas) openZoom(button.dataset.chart, canvas);
  };
}
$('zoom-png').onclick = () => $('zoom-canvas').toBlob((blob) => download(`${zoom.title.replace(/[^\w.-]+/g, '_')}.png`, blob));

/** A captioned canvas that opens enlarged on click (and Enter). */
function figure(parent, caption, image, label = caption) {
  const fig = document.createElement('figure');
  const canvas = document.createElement('canvas');
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', label);
  canvas.tabIndex = 0;
  draw(canvas, image);
  canvas.onclick = () => openZoom(caption, canvas);
  canvas.onkeydown = (e) => { if (e.key === 'Enter') openZoom(caption, canvas); };
  const cap = document.createElement('figcaption');
  cap.textContent = caption;
  fig.append(canvas, cap);
  parent.append(fig);
  return fig;
}

// ------------------------------------------------------------------ data

// data-for names the sources a control belongs to; data-dataset, the Zenodo dataset
const sourceControls = () => {
  const source = $('source').value;
  for (const el of document.querySelectorAll('[data-for]')) {
    el.hidden = !el.dataset.for.split(' ').includes(source) || (el.dataset.dataset !== undefined && el.dataset.dataset !== $('dataset').value);
  }
};
$('source').onchange = () => { sourceControls(); saveState(); };
$('dataset').onchange = () => { sourceControls(); saveState(); };

/** A note on the data being loaded (how it is sampled, how the record is laid out). */
function dataNote(message) {
  const item = document.createElement('li');
  item.textContent = message;
  $('data-log').append(item);
  $('data-log').hidden = false;
}

const currentView = () => `${$('debayer').value}-${$('sharpening').value}-${$('denoising').value}`;

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

const load = guard(async () => {
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

const drop = $('drop');
drop.ondragover = (e) => { e.preventDefault(); drop.classList.add('over'); };
drop.ondragleave = () => drop.classList.remove('over');
drop.ondrop = guard(async (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  const result = await loadFiles([...e.dataTransfer.files]);
  await renderTiles(result.count);
  await showCamera();
  await selectTile(0);
  setStatus(`${result.count} tiles loaded`);
});

// ------------------------------------------------------------------ camera

/** The camera panel's inputs by the camera JSON's keys. */
const cameraInputs = () => Object.fromEntries([...$('camera').querySelectorAll('fieldset[data-camera]')]
  .map((set) => [set.dataset.camera, [...set.querySelectorAll('input')]]));
let cameraParams = {};

/** The camera and its source into the panel; it asks for one where the tiles carry none. */
async function showCamera() {
  const info = await call('cameraInfo');
  cameraParams = info.params;
  $('camera-source').value = info.source;
  $('camera-preset').value = info.preset ?? '';
  $('camera-ask').hidden = !info.needsChoice;
  $('camera').classList.toggle('needs-choice', info.needsChoice);
  for (const [key, inputs] of Object.entries(cameraInputs())) {
    inputs.forEach((input, i) => { input.value = [info.params[key]].flat()[i]; });
  }
  document.body.dataset.cameraSource = info.source;
}

/** A new camera, then everything drawn with it again (the ISP parameters restart from it). */
async function changeCamera(method, args) {
  await call(method, args);
  values.params = null;
  await showCamera();
  await refreshParams();
  saveState();
  const tiles = [...$('tiles').children];
  if (!tiles.length) return;
  tiles.forEach((button, i) => thumbnail(i, button.querySelector('canvas')));
  await Promise.all([showStages(), showViews(), runIsp()]);
  setStatus(`Camera: ${$('camera-source').value}`);
}

$('camera-preset').onchange = guard(async () => {
  if ($('camera-preset').value) await changeCamera('setCameraPreset', { name: $('camera-preset').value });
});
$('camera-upload').onchange = guard(async (e) => {
  const [file] = e.target.files;
  e.target.value = '';
  if (!file) return;
  await changeCamera('setCameraJson', { text: await file.text(), source: 'upload' }).catch((error) => {
    throw new Error(`${file.name}: ${error.message}`);
  });
});
$('camera-apply').onclick = guard(async () => {
  // an empty or unreadable field is NaN, null in JSON: the core names it
  const fields = Object.fromEntries(Object.entries(cameraInputs()).map(([key, inputs]) => {
    const numbers = inputs.map((input) => input.valueAsNumber);
    return [key, Array.isArray(cameraParams[key]) ? numbers : numbers[0]];
  }));
  await changeCamera('setCameraJson', { text: JSON.stringify(fields), source: 'edited' });
});
$('camera-save').onclick = guard(async () => download('camera.json', (await call('cameraInfo')).json, 'application/json'));

function addTile(index, name, label) {
  const button = document.createElement('button');
  button.className = 'tile';
  button.type = 'button';
  button.setAttribute('role', 'listitem');
  button.setAttribute('aria-label', `tile ${index + 1}: ${name}${label ? `, ${label}` : ''}`);
  const canvas = document.createElement('canvas');
  button.append(canvas);
  if (label) {
    const badge = document.createElement('span');
    badge.className = 'badge';
    badge.textContent = label;
    button.append(badge);
  }
  button.onclick = guard(() => selectTile(index));
  $('tiles').append(button);
  thumbnail(index, canvas);
}

async function thumbnail(index, canvas) {
  try {
    draw(canvas, await call('thumbnail', { index, view: currentView() }));
    if ($('show-masks').checked) {
      const info = await call('tileInfo', { index });
      if (info.hasMask) {
        const overlay = await call('maskOverlay', { index });
        const bitmap = await createImageBitmap(new ImageData(new Uint8ClampedArray(overlay.rgba), overlay.width, overlay.height));
        canvas.getContext('2d').drawImage(bitmap, 0, 0);
      }
    }
  } catch (error) {
    // a tile discarded while its thumbnail was on the way is no error of its own
    if (canvas.isConnected) showError(error.message);
  }
}

async function renderTiles(count) {
  $('tiles').replaceChildren();
  $('tile-count').textContent = `${count} tiles`;
  for (let i = 0; i < count; i++) {
    const info = await call('tileInfo', { index: i });
    addTile(i, info.name, info.class);
  }
}
$('show-masks').onchange = guard(async () => renderTiles($('tiles').children.length));

// ------------------------------------------------------------------ the static pipeline

function histogram(parent, hist) {
  const div = document.createElement('div');
  div.className = 'hist';
  parent.append(div);
  const bins = hist.counts[0].length;
  const xs = Array.from({ length: bins }, (_, i) => hist.lo + (i + 0.5) * (hist.hi - hist.lo) / bins);
  const colours = hist.counts.length === 1 ? ['#555'] : ['#d22', '#2a2', '#24d'];
  new uPlot({
    width: 140, height: 48, legend: { show: false }, cursor: { show: false },
    axes: [{ show: false }, { show: false }], scales: { x: { time: false } },
    series: [{}, ...colours.map((stroke) => ({ stroke, width: 1 }))],
  }, [xs, ...hist.counts], div);
}

async function selectTile(index) {
  values.tile = index;
  for (const [i, b] of [...$('tiles').children].entries()) b.setAttribute('aria-current', String(i === index));
  await call('select', { index });
  await Promise.all([showStages(), showViews(), runIsp()]);
  saveState();
}

const showStages = guard(async () => {
  const stages = await call('stages', { view: currentView() });
  const strip = $('stages');
  strip.replaceChildren();
  for (const stage of stages) {
    const fig = figure(strip, stage.name, stage.image, `${stage.name} of the selected tile`);
    histogram(fig, stage.histogram);
  }
});

const showViews = guard(async () => {
  const images = await call('views');
  const grid = $('views');
  grid.replaceChildren();
  images.forEach((image, i) => figure(grid, views[i].replaceAll('-', ' \u00b7 '), image, `view ${views[i]}`));
  document.body.dataset.views = String(images.length);
  const paper = await call('paperViews');
  const strip = $('paper-views');
  strip.replaceChildren();
  for (const { label, image } of paper) figure(strip, label, image, `the paper's own ${label} view`);
  $('paper-views-section').hidden = paper.length === 0;
  document.body.dataset.paperViews = String(paper.length);
});

for (const id of ['debayer', 'sharpening', 'denoising']) {
  $(id).onchange = guard(async () => { saveState(); await Promise.all([showStages(), runIsp()]); });
}

// ------------------------------------------------------------------ parametrized processing

let paramSpecs = [];
let paramValues = [];

function paramEditor() {
  const editor = $('param-editor');
  editor.replaceChildren();
  let at = 0;
  for (const { name, shape } of paramSpecs) {
    const size = shape.reduce((a, b) => a * b, 1);
    const set = document.createElement('fieldset');
    const legend = document.createElement('legend');
    legend.textContent = name;
    const grid = document.createElement('div');
    grid.className = 'grid';
    // kernels and matrices as their last dimension's rows; debayer shows its diagonal kernels
    const columns = shape.length >= 2 ? shape[shape.length - 1] : Math.min(size, 4);
    grid.style.gridTemplateColumns = `repeat(${columns}, auto)`;
    const indices = name === 'debayer.weight'
      ? [0, 1, 2].flatMap((c) => Array.from({ length: 9 }, (_, k) => (c * 3 + c) * 9 + k))
      : Array.from({ length: size }, (_, k) => k);
    for (const k of indices) {
      const input = document.createElement('input');
      input.type = 'number';
      input.step = 'any';
      input.value = Number(paramValues[at + k].toPrecision(5));
      input.setAttribute('aria-label', `${name} value ${k + 1}`);
      const index = at + k;
      input.oninput = () => { paramValues[index] = Number(input.value); scheduleIsp(); };
      grid.append(input);
    }
    set.append(legend, grid);
    editor.append(set);
    at += size;
  }
}

async function refreshParams() {
  if (values.params) {
    const restored = values.params.split(',').map(Number);
    const expected = paramSpecs.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
    if (restored.length === expected) await call('setParams', { values: restored });
  }
  paramValues = await call('params');
  paramEditor();
}

let ispTimer = null;
function scheduleIsp() {
  clearTimeout(ispTimer);
  ispTimer = setTimeout(guard(async () => {
    await call('setParams', { values: paramValues });
    values.params = paramValues.join(',');
    saveState();
    await runIsp();
  }), 150);
}

const runIsp = guard(async () => {
  const gradients = $('param-gradients').checked;
  const forParams = values.params ?? '';
  const result = await call('runIsp', { gradients, view: currentView() });
  const strip = $('isp-stages');
  strip.replaceChildren();
  for (const stage of result.stages) figure(strip, `${stage.name} (parametrized)`, stage.image);
  const grads = $('isp-gradients');
  grads.replaceChildren();
  for (const g of result.gradients ?? []) figure(grads, `|dL/d ${g.name}| (max ${g.max.toExponential(1)})`, g.image);
  document.body.dataset.isp = String(Number(document.body.dataset.isp ?? 0) + 1);
  // which parameters the images on screen were made with (a shared link must reproduce them)
  document.body.dataset.ispParams = forParams;
});

$('param-gradients').onchange = runIsp;
$('reset-params').onclick = guard(async () => { await call('resetParams'); values.params = null; await refreshParams(); saveState(); await runIsp(); });
$('download-params').onclick = guard(async () => download('isp_parameters.safetensors', await call('saveParams'), 'application/octet-stream'));
$('upload-params').onchange = guard(async (e) => {
  const bytes = new Uint8Array(await e.target.files[0].arrayBuffer());
  await call('loadParams', { bytes }, [bytes.buffer]);
  paramValues = await call('params');
  values.params = null;
  paramEditor();
  await runIsp();
});

// ------------------------------------------------------------------ fine-tuning

const session = { curves: {}, snapshots: [], playing: null, summary: null, started: 0 };

function chart(id, label) {
  const el = $(id);
  el.replaceChildren();
  return new uPlot({
    width: Math.max(240, el.clientWidth || 300), height: 180, legend: { show: false },
    scales: { x: { time: false } }, axes: [{ label: 'step of the phase' }, { label }],
    series: [{ label: 'step' }],
  }, [[]], el);
}
let lossChart = null;
let metricChart = null;

const PALETTE = ['#0b5cad', '#c2410c', '#15803d', '#7e22ce', '#be123c', '#0e7490', '#a16207', '#4d7c0f', '#9d174d'];

/** The phases' colours, as a key under the charts (uPlot's own legend is off: names are long). */
function chartKey(phases) {
  const key = $('chart-key');
  key.replaceChildren(...phases.map((p, i) => {
    const item = document.createElement('li');
    item.style.setProperty('--swatch', PALETTE[i % PALETTE.length]);
    item.textContent = p;
    return item;
  }));
}

function plotCurves() {
  const phases = Object.keys(session.curves);
  chartKey(phases);
  const longest = Math.max(0, ...phases.map((p) => session.curves[p].length));
  const xs = Array.from({ length: longest }, (_, i) => i + 1);
  const series = (k) => phases.map((p) => xs.map((_, i) => session.curves[p][i]?.[k] ?? null));
  for (const [c, k] of [[lossChart, 1], [metricChart, 2]]) {
    while (c.series.length - 1 < phases.length) {
      const i = c.series.length - 1;
      c.addSeries({ label: phases[i], stroke: PALETTE[i % PALETTE.length], width: 2 });
    }
    c.setData([xs, ...series(k)]);
  }
}

// auto's measured choices, by the key the core gives them (adapter, model, batch, tile size)
const REMEMBERED_DEVICES = 'lens2logit.devices';
const rememberedDevices = () => JSON.parse(localStorage.getItem(REMEMBERED_DEVICES) ?? '{}');

/** A job's events: its sessions ('start'), their steps, the experiment's table, its weights. */
listeners.job = (e) => {
  if (e.kind === 'weights') {
    $('weights-info').value = `${e.name}: ${(e.bytes / 2 ** 20).toFixed(1)} MB, SHA-256 ${e.sha256}, ${e.tensors} tensors, ${weightsOrigin}`;
    if (e.headReinitialised) showError(e.headReinitialised);
    return;
  }
  if (e.count > 1) {
    experimentProgress(e);
    return;
  }
  if (e.kind === 'start') {
    $('train-progress').max = e.total;
    $('train-device').value = `training on ${e.device}`;
    if (e.choice?.key) {
      localStorage.setItem(REMEMBERED_DEVICES, JSON.stringify({ ...rememberedDevices(), [e.choice.key]: e.choice.gpu ? 'gpu' : 'cpu' }));
    }
    return;
  }
  if (e.kind !== 'step') return;
  const { report, snapshots } = e;
  const curve = (session.curves[report.phase] ??= []);
  curve.push([report.step, report.loss, report.metric]);
  plotCurves();
  $('train-progress').value = report.global_step;
  const left = (report.total_steps - report.global_step) * report.step_ms / 1000;
  $('train-rate').value = `${report.phase}: step ${report.step}/${report.steps}, ${report.samples_per_s.toFixed(1)} tiles/s, ${left.toFixed(0)} s left`;
  if (snapshots.length) {
    session.snapshots.push(...snapshots);
    const slider = $('timeline');
    slider.max = session.snapshots.length - 1;
    slider.disabled = false;
    $('play').disabled = false;
    slider.value = slider.max;
    showSnapshot(session.snapshots.length - 1);
  }
  document.body.dataset.steps = String(report.global_step);
};

/** A snapshot's two rows into `gradients` and `outputs`: the paper's timeline, stage by stage. */
function timelineRows(s, gradients, outputs) {
  gradients.replaceChildren();
  outputs.replaceChildren();
  s.images.forEach((image, k) => figure(gradients, `|dL/d ${s.stages[k]}| (max ${s.maxima[k].toExponential(1)})`, image));
  s.outputs.forEach((image, k) => figure(outputs, `${s.stages[k]} output`, image));
}

function showSnapshot(i) {
  const s = session.snapshots[i];
  if (!s) return;
  timelineRows(s, $('snapshot'), $('snapshot-outputs'));
  $('timeline-label').value = `${s.phase}, step ${s.step}`;
  document.body.dataset.snapshot = String(i);
}
$('timeline').oninput = () => showSnapshot(Number($('timeline').value));
$('play').onclick = () => {
  if (session.playing) {
    clearInterval(session.playing);
    session.playing = null;
    $('play').textContent = 'Play';
    return;
  }
  $('play').textContent = 'Stop';
  let i = 0;
  session.playing = setInterval(() => {
    $('timeline').value = i;
    showSnapshot(i);
    i = (i + 1) % session.snapshots.length;
  }, 400);
};

const modeControls = () => {
  for (const el of document.querySelectorAll('[data-mode]')) el.hidden = el.dataset.mode !== $('mode').value;
};
$('mode').onchange = () => { modeControls(); saveState(); };

function showResults({ summary, adversarial, finished }, out = $('results')) {
  out.replaceChildren();
  const heading = document.createElement('h3');
  heading.textContent = finished ? `Results (${summary.metric})` : 'Cancelled';
  out.append(heading);
  const list = document.createElement('ul');
  for (const [phase, metric] of Object.entries(summary.final_metric)) {
    const item = document.createElement('li');
    item.textContent = `${phase}: validation ${summary.metric} ${metric.toFixed(3)}`;
    list.append(item);
  }
  out.append(list);
  if (summary.views) {
    const scroll = document.createElement('div');
    scroll.className = 'scroll';
    scroll.append(driftTable(summary));
    out.append(scroll);
  }
  if (summary.corruptions) out.append(corruptionTable(summary));
  if (summary.forensics) {
    const groups = summary.forensics_ranking ?? Object.keys(summary.forensics);
    const div = document.createElement('div');
    div.className = 'chart';
    out.append(div);
    new uPlot({
      // one tick per group, names slanted to fit; drops are metric differences, so the axis starts
      // at 0 (or below) and spans at least 0.05 even when nothing dropped
      width: 340, height: 220, legend: { show: false }, padding: [8, 40, 0, 0],
      scales: { x: { time: false, range: [-0.5, groups.length - 0.5] }, y: { range: (_, min, max) => [Math.min(0, min), Math.max(0.05, max)] } },
      axes: [{ splits: () => groups.map((_, i) => i), values: (_, ticks) => ticks.map((t) => groups[t] ?? ''), rotate: -35, size: 80, font: '10px sans-serif' },
        { label: `${summary.metric} drop` }],
      series: [{}, { label: 'drop', fill: '#c2410c88', stroke: '#c2410c', paths: uPlot.paths.bars({ size: [0.6] }) }],
    }, [groups.map((_, i) => i), groups.map((g) => summary.forensics[g][2])], div);
    out.append(numberTable('forensics', 'Attacks, the largest drop first', ['group', 'before', 'after', 'drop'],
      groups.map((g) => [g, ...summary.forensics[g]])));
    const strip = document.createElement('div');
    strip.className = 'strip';
    out.append(strip);
    for (const a of adversarial) figure(strip, `adversarial: ${a.group}`, a.image);
  }
  if (out === $('results')) document.body.dataset.results = summary.mode;
}

function driftTable(summary) {
  const table = document.createElement('table');
  table.className = 'drift';
  const views = Object.keys(summary.views);
  const levels = Object.keys(summary.views[views[0]]).sort((a, b) => b - a);
  const header = table.insertRow();
  header.insertCell().outerHTML = '<th scope="col">intensity</th>';
  for (const v of views) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = v.replaceAll('-', ' ');
    header.append(th);
  }
  for (const level of levels) {
    const row = table.insertRow();
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = `${level}%`;
    row.append(th);
    for (const v of views) {
      const value = summary.views[v][level];
      const cell = row.insertCell();
      cell.textContent = value.toFixed(2);
      // white (bad) to blue (good): the heatmap of the paper's drift table
      cell.style.background = `hsl(212 70% ${Math.round(97 - 45 * value)}%)`;
      cell.style.color = value > 0.75 ? '#fff' : '#111';
    }
  }
  return table;
}

/** The post-hoc corruption baseline: the training view corrupted, beside the drift table. */
/** A small table of numbers: a caption, column names and rows of a name and values. */
function numberTable(className, caption, columns, rows) {
  const table = document.createElement('table');
  table.className = className;
  table.createCaption().textContent = caption;
  const header = table.insertRow();
  for (const name of columns) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = name;
    header.append(th);
  }
  for (const [name, ...values] of rows) {
    const row = table.insertRow();
    row.insertCell().textContent = name.replaceAll('_', ' ');
    for (const v of values) row.insertCell().textContent = v.toFixed(2);
  }
  return table;
}

function corruptionTable(summary) {
  return numberTable('corruptions', `Post-hoc corruption of the training view (severity ${$('corruption').value})`,
    ['corruption', summary.metric, 'drop'], Object.entries(summary.corruptions).map(([name, values]) => [name, ...values]));
}

function curvesCsv() {
  let csv = 'phase,step,loss,metric\n';
  for (const [phase, rows] of Object.entries(session.curves)) for (const [s, l, m] of rows) csv += `"${phase}",${s},${l},${m}\n`;
  if (session.summary?.views) {
    csv += '\nview,intensity,metric\n';
    for (const [v, row] of Object.entries(session.summary.views)) for (const [i, m] of Object.entries(row)) csv += `${v},${i},${m}\n`;
  }
  if (session.summary?.corruptions) {
    csv += '\ncorruption,metric,drop\n';
    for (const [name, [m, d]] of Object.entries(session.summary.corruptions)) csv += `${name},${m},${d}\n`;
  }
  return csv;
}

$('start').onclick = guard(async () => {
  $('error').hidden = true;
  session.curves = {};
  session.snapshots = [];
  lossChart = chart('loss-chart', 'loss');
  metricChart = chart('metric-chart', $('task').value === 'segmentation' ? 'IoU' : 'accuracy');
  $('metric-caption').textContent = $('task').value === 'segmentation' ? 'IoU' : 'Accuracy';
  $('results').replaceChildren();
  for (const id of ['pause', 'cancel']) $(id).disabled = false;
  $('start').disabled = true;
  saveState();
  const options = sessionOptions();
  try {
    const weights = await chosenWeights();
    weightsOrigin = weights?.origin ?? '';
    const result = await call('runJob', { options: { ...options, name: $('run-name').value }, weights });
    session.summary = result.summary;
    showResults(result);
    if (result.saveError) showError(result.saveError);
    else setStatus(`Run "${result.run.name}" kept in the lab log`);
    await refreshRuns();
    if (!result.saveError && $('mlflow').value) await logToMlflow([result.run.id]);
    for (const id of ['export-curves', 'export-timeline', 'export-model', 'export-isp']) $(id).disabled = false;
  } finally {
    for (const id of ['pause', 'cancel']) $(id).disabled = true;
    $('pause').textContent = 'Pause';
    $('start').disabled = false;
  }
});
/** The page's session settings, as the Start button and the experiment read them. */
const sessionOptions = () => ({
  mode: $('mode').value, model: $('model').value || null, steps: Number($('steps').value),
  lr: Number($('lr').value), batch: Number($('batch').value), seed: Number($('seed').value),
  view: currentView(), lambda: Number($('lambda').value), group: $('group').value,
  forensicSteps: Number($('attack-steps').value),
  corruptionSeverity: $('corruption').value ? Number($('corruption').value) : null,
  backend: $('device').value,
  rememberedDevices: rememberedDevices(),
  freezeBackbone: $('freeze-backbone').value,
  backboneLr: $('backbone-lr').value ? Number($('backbone-lr').value) : null,
});

/**
 * The weights the user named: a dropped file, or a URL (read from the browser's cache, or
 * fetched into it; its origin must be one the worker may reach). None: seeded random weights.
 */
let weightsOrigin = '';
async function chosenWeights() {
  const file = $('weights-file').files[0];
  if (file) return { bytes: new Uint8Array(await file.arrayBuffer()), name: file.name, origin: 'from your file' };
  const url = $('weights-url').value.trim();
  if (!url) return null;
  if (await reachOrigins('the weights URL is on another origin')) await load();
  const fetched = await call('fetchWeights', { url });
  return { ...fetched, origin: `${fetched.cached ? 'from the browser cache' : 'fetched'}${fetched.notKept ? ` (not cached: ${fetched.notKept})` : ''}` };
}

/** The experiment's progress: session `index` of `count`, its step. */
function experimentProgress({ kind, index, count, label, report }) {
  if (kind !== 'step') return;
  const bar = $('experiment-progress');
  bar.max = count * report.total_steps;
  bar.value = index * report.total_steps + report.global_step;
  $('experiment-rate').value = `training ${index + 1}/${count}: ${label}, step ${report.global_step}/${report.total_steps}`;
}

$('run-experiment').onclick = guard(async () => {
  $('error').hidden = true;
  const out = $('experiment');
  out.replaceChildren();
  for (const id of ['start', 'run-experiment']) $(id).disabled = true;
  for (const id of ['pause', 'cancel']) $(id).disabled = false;
  $('experiment-progress').hidden = false;
  saveState();
  const options = { ...sessionOptions(), mode: 'synthesis', experiment: 'synthesis', trainView: $('train-view').value || null, name: $('run-name').value || 'synthesis experiment' };
  try {
    const weights = await chosenWeights();
    weightsOrigin = weights?.origin ?? '';
    const result = await call('runJob', { options, weights });
    if (!result.finished) throw new Error('the experiment was cancelled; the finished trainings are in the lab log');
    const heading = document.createElement('h3');
    heading.textContent = 'The 12 x 12 table: trained on the row\'s view, tested on the column\'s';
    out.append(heading);
    figure(out, 'synthesis 12 x 12', result.matrix);
    figure(out, 'synthesis by intensity', result.intensity);
    const buttons = document.createElement('div');
    buttons.className = 'controls';
    for (const [name, data, type] of [['synthesis_12x12.csv', result.matrixCsv, 'text/csv'], ['synthesis_intensity.csv', result.intensityCsv, 'text/csv'], ['synthesis.json', result.tableJson, 'application/json']]) {
      const button = Object.assign(document.createElement('button'), { type: 'button', textContent: name });
      button.onclick = () => download(name, data, type);
      buttons.append(button);
    }
    out.append(buttons);
    document.body.dataset.experiment = 'done';
  } finally {
    for (const id of ['start', 'run-experiment']) $(id).disabled = false;
    for (const id of ['pause', 'cancel']) $(id).disabled = true;
    $('pause').textContent = 'Pause';
    await refreshRuns();
  }
});

$('pause').onclick = () => {
  const paused = $('pause').textContent === 'Resume';
  call(paused ? 'resume' : 'pause');
  $('pause').textContent = paused ? 'Pause' : 'Resume';
};
$('cancel').onclick = () => call('cancel');
$('export-curves').onclick = () => download('lens2logit_curves.csv', curvesCsv(), 'text/csv');
$('export-timeline').onclick = guard(async () => download('lens2logit_timeline.gif', await call('timelineGif'), 'image/gif'));
$('export-model').onclick = guard(async () => download('model.safetensors', await call('saveModel'), 'application/octet-stream'));
$('export-isp').onclick = guard(async () => download('isp.safetensors', await call('saveIsp'), 'application/octet-stream'));

// ------------------------------------------------------------------ lab log

const selectedRuns = () => [...document.querySelectorAll('#runs-table input:checked')].map((box) => box.value);

const refreshRuns = guard(async () => {
  const selection = Object.fromEntries(['mode', 'model', 'view', 'dataset', 'text', 'sort'].map((k) => [k, $(`runs-${k}`).value || null]));
  const { rows, total, facets, usage } = await call('listRuns', { selection });
  for (const [k, values] of Object.entries(facets)) {
    const select = $(`runs-${k}`);
    const keep = select.value;
    select.replaceChildren(new Option('any', ''), ...values.filter(Boolean).map((v) => new Option(v, v)));
    select.value = values.includes(keep) ? keep : '';
  }
  $('runs-storage').value = `${total} runs; ${usage}`;
  const table = $('runs-table');
  table.replaceChildren();
  const header = table.insertRow();
  for (const name of ['', 'name', 'mode', 'model', 'view', 'dataset', 'device', 'status', 'metric', 'started']) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = name;
    header.append(th);
  }
  for (const m of rows) {
    const row = table.insertRow();
    row.dataset.run = m.id;
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.value = m.id;
    box.setAttribute('aria-label', `select run ${m.name}`);
    row.insertCell().append(box);
    const headline = m.metrics[`val_${m.metric}`];
    for (const text of [m.name, m.mode, m.model, m.view || '-', m.dataset, m.device, m.status,
      headline === undefined ? '-' : `${m.metric} ${headline.toFixed(3)}`, new Date(m.started_ms).toLocaleString()]) {
      row.insertCell().textContent = text;
    }
  }
  document.body.dataset.runs = String(rows.length);
});
for (const k of ['mode', 'model', 'view', 'dataset', 'sort']) $(`runs-${k}`).onchange = refreshRuns;
$('runs-text').oninput = refreshRuns;

/** Curves of several runs (or one), overlaid: a series per run and phase. */
function overlayCharts(parent, runs) {
  const charts = document.createElement('div');
  charts.className = 'charts';
  parent.append(charts);
  const series = runs.flatMap(({ meta, curves }) => curves.map((c) => ({ label: runs.length > 1 ? `${meta.name}: ${c.phase}` : c.phase, steps: c.steps })));
  const longest = Math.max(0, ...series.map((s) => s.steps.length));
  const xs = Array.from({ length: longest }, (_, i) => i + 1);
  for (const [k, label] of [[1, 'loss'], [2, runs[0]?.meta.metric ?? 'metric']]) {
    const figureEl = document.createElement('figure');
    figureEl.innerHTML = `<figcaption>${label}</figcaption>`;
    const div = document.createElement('div');
    div.className = 'chart';
    figureEl.append(div);
    charts.append(figureEl);
    new uPlot({
      width: Math.max(240, div.clientWidth || 300), height: 180, legend: { show: false }, scales: { x: { time: false } },
      axes: [{ label: 'step of the phase' }, { label }],
      series: [{ label: 'step' }, ...series.map((s, i) => ({ label: s.label, stroke: PALETTE[i % PALETTE.length], width: 2 }))],
    }, [xs, ...series.map((s) => xs.map((_, i) => s.steps[i]?.[k] ?? null))], div);
  }
  const key = document.createElement('ul');
  key.className = 'chart-key';
  key.replaceChildren(...series.map((s, i) => {
    const item = document.createElement('li');
    item.style.setProperty('--swatch', PALETTE[i % PALETTE.length]);
    item.textContent = s.label;
    return item;
  }));
  parent.append(key);
}

$('runs-open').onclick = guard(async () => {
  const [id] = selectedRuns();
  if (!id) throw new Error('Tick a run in the lab log to open it.');
  const run = await call('openRun', { id });
  const out = $('run-view');
  out.replaceChildren();
  const heading = document.createElement('h3');
  heading.textContent = `${run.meta.name} (${run.meta.status}, ${new Date(run.meta.finished_ms).toLocaleString()})`;
  out.append(heading);
  overlayCharts(out, [run]);
  const results = document.createElement('div');
  out.append(results);
  if (run.summary) showResults({ summary: run.summary, adversarial: run.adversarial, finished: run.meta.status === 'finished' }, results);
  if (run.snapshots.length) {
    const [gradients, outputs] = [0, 1].map(() => Object.assign(document.createElement('div'), { className: 'strip' }));
    const slider = Object.assign(document.createElement('input'), { type: 'range', min: 0, max: run.snapshots.length - 1, value: run.snapshots.length - 1 });
    slider.setAttribute('aria-label', 'snapshot of the opened run');
    const label = document.createElement('output');
    const gif = Object.assign(document.createElement('button'), { type: 'button', textContent: 'Timeline (GIF)', className: 'small' });
    gif.onclick = guard(async () => download(`lens2logit_timeline_${id}.gif`, await call('runTimelineGif', { id }), 'image/gif'));
    const show = () => {
      const s = run.snapshots[Number(slider.value)];
      timelineRows(s, gradients, outputs);
      label.value = `${s.phase}, step ${s.step}`;
    };
    slider.oninput = show;
    out.append(slider, label, gif, gradients, outputs);
    show();
  }
  document.body.dataset.openedRun = run.meta.id;
});

$('runs-compare').onclick = guard(async () => {
  const ids = selectedRuns();
  if (ids.length < 2) throw new Error('Tick two or more runs in the lab log to compare them.');
  const runs = await call('compareRuns', { ids });
  const out = $('run-view');
  out.replaceChildren();
  const heading = document.createElement('h3');
  heading.textContent = `Comparing ${runs.length} runs`;
  out.append(heading);
  overlayCharts(out, runs);
  // final metrics and the settings that differ, a column per run
  const table = document.createElement('table');
  table.className = 'compare';
  const header = table.insertRow();
  header.insertCell().outerHTML = '<th scope="col"></th>';
  for (const { meta } of runs) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = meta.name;
    header.append(th);
  }
  const keys = (field) => [...new Set(runs.flatMap(({ meta }) => Object.keys(meta[field])))].sort();
  const rows = [
    ...keys('metrics').map((k) => [k, runs.map(({ meta }) => meta.metrics[k]?.toFixed(4) ?? '-')]),
    ...keys('params').map((k) => [k, runs.map(({ meta }) => meta.params[k] ?? '-')]).filter(([, v]) => new Set(v).size > 1),
  ];
  for (const [name, values] of rows) {
    const row = table.insertRow();
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = name;
    row.append(th);
    for (const v of values) row.insertCell().textContent = v;
  }
  const scroll = document.createElement('div');
  scroll.className = 'scroll';
  scroll.append(table);
  out.append(scroll);
  document.body.dataset.compared = String(runs.length);
});

/** Logs stored runs to the MLflow server the page names; a failure leaves them in the lab log. */
async function logToMlflow(ids) {
  const status = $('mlflow-status');
  for (const id of ids) {
    try {
      const mlflowRun = await call('logRun', { id, url: $('mlflow').value, experiment: $('experiment').value || 'lens2logit' });
      status.value = `logged run ${id} as MLflow run ${mlflowRun}`;
    } catch (error) {
      status.value = '';
      throw new Error(`${error.message} (run ${id} stays in the lab log; log it again from there)`);
    }
  }
  document.body.dataset.mlflowLogged = String(ids.length);
}
listeners.mlflow = ({ done, total }) => { $('mlflow-status').value = `uploading artifacts ${done}/${total}`; };
$('mlflow').onchange = guard(async () => {
  saveState();
  // the worker may reach the server only if its policy names it: a new one may take over
  if (await reachOrigins('the MLflow server changed')) await load();
});
$('experiment').onchange = saveState;
$('runs-mlflow').onclick = guard(async () => {
  const ids = selectedRuns();
  if (!ids.length) throw new Error('Tick the runs to log to MLflow.');
  if (!$('mlflow').value) throw new Error('Set the MLflow tracking server (its URL) first.');
  await logToMlflow(ids);
});

$('runs-export').onclick = guard(async () => {
  const [id] = selectedRuns();
  if (!id) throw new Error('Tick a run in the lab log to export it.');
  const { name, zip } = await call('exportRun', { id });
  download(name, zip, 'application/zip');
});

$('runs-delete').onclick = guard(async () => {
  const ids = selectedRuns();
  if (!ids.length) throw new Error('Tick the runs to delete.');
  if (!confirm(`Delete ${ids.length} run(s) from the lab log? Export them first to keep a copy.`)) return;
  await call('deleteRuns', { ids });
  $('run-view').replaceChildren();
  await refreshRuns();
});

$('runs-import').onchange = guard(async (e) => {
  for (const file of e.target.files) {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const meta = await call('importRun', { bytes }, [bytes.buffer]).catch((error) => {
      throw new Error(`${file.name}: ${error.message}`);
    });
    setStatus(`Imported run "${meta.name}"`);
  }
  e.target.value = '';
  await refreshRuns();
});

// ------------------------------------------------------------------ start

let views = [];
const backend = url.get('backend') === 'cpu' ? 'cpu' : 'gpu';
$('switch-backend').textContent = backend === 'cpu' ? 'Use WebGPU' : 'Use CPU';
$('switch-backend').onclick = () => {
  const next = new URLSearchParams(location.search);
  next.set('backend', backend === 'cpu' ? 'gpu' : 'cpu');
  location.search = next.toString();
};

/** Starts the core in the worker and shows what it runs on. */
async function initWorker() {
  // ?threads=N sizes the worker pool (1: the single-threaded module), default: every core
  const threads = Number.parseInt(url.get('threads') ?? '', 10);
  const ready = await call('init', { preferGpu: backend !== 'cpu', threads: threads > 0 ? Math.min(threads, 64) : undefined });
  $('backend').textContent = ready.backend;
  $('threads').textContent = ready.threads > 1
    ? `${ready.threads} threads`
    : (ready.isolated ? '1 thread' : '1 thread (this host does not isolate the page: no threads)');
  document.body.dataset.threads = String(ready.threads);
  document.body.dataset.backend = ready.gpu ? 'gpu' : 'cpu';
  if (!ready.gpu && backend !== 'cpu') {
    // asked for WebGPU, none here: nothing to switch between
    $('switch-backend').textContent = 'No WebGPU adapter';
    $('switch-backend').disabled = true;
  }
  return ready;
}

guard(async () => {
  const ready = await initWorker();
  views = ready.views;
  paramSpecs = ready.params;
  applySettings(ready.settings);
  draw($('legend'), ready.legend);
  const names = (k) => [...new Set(views.map((v) => v.split('-')[k]))];
  for (const [k, id] of ['debayer', 'sharpening', 'denoising'].entries()) {
    $(id).replaceChildren(...names(k).map((n) => new Option(n, n)));
  }
  $('sharpening').value = 'unsharp_masking';
  $('train-view').append(...views.map((v) => new Option(v, v)));
  restoreControls();
  sourceControls();
  modeControls();
  lossChart = chart('loss-chart', 'loss');
  metricChart = chart('metric-chart', 'metric');
  await refreshRuns();
  await load();
})();
