// 4. Fine-tuning: a session (start, pause, resume, cancel; progress, loss and metric curves, the
// gradient timeline, results, exports) and the synthesis experiment (the 12 x 12 table).

import uPlot from '../vendor/uplot/uPlot.esm.js';
import { load } from './data.js';
import { $ } from './dom.js';
import { chosenTwin } from './camera-fit.js';
import { download, figure } from './images.js';
import { logToMlflow, refreshRuns } from './lab-log.js';
import { PALETTE, showResults, timelineRows } from './results.js';
import { currentView, saveState, session } from './state.js';
import { guard, setStatus, showError } from './status.js';
import { call, listeners, reachOrigins } from './worker-client.js';

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

/** The empty loss and metric charts the page opens with. */
export function initCharts() {
  lossChart = chart('loss-chart', 'loss');
  metricChart = chart('metric-chart', 'metric');
}

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
function jobEvent(e) {
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
  $('train-progress').value = report.global_step;
  const left = `${report.samples_per_s.toFixed(1)} tiles/s, ${(report.left_ms / 1000).toFixed(0)} s left`;
  if (report.evaluating) {
    $('train-rate').value = `${report.phase}: ${report.evaluating} (${report.step}/${report.steps}), ${left}`;
    document.body.dataset.evaluated = String(report.step);
    return;
  }
  const curve = (session.curves[report.phase] ??= []);
  curve.push([report.step, report.loss, report.metric]);
  plotCurves();
  $('train-rate').value = `${report.phase}: step ${report.step}/${report.steps}, ${left}`;
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
}

function showSnapshot(i) {
  const s = session.snapshots[i];
  if (!s) return;
  timelineRows(s, $('snapshot'), $('snapshot-outputs'));
  $('timeline-label').value = `${s.phase}, step ${s.step}`;
  document.body.dataset.snapshot = String(i);
}

export const modeControls = () => {
  for (const el of document.querySelectorAll('[data-mode]')) el.hidden = el.dataset.mode !== $('mode').value;
};

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
  const what = report.evaluating ? `evaluating ${report.evaluating}` : 'training';
  $('experiment-rate').value = `${index + 1}/${count}: ${label}, ${what}, step ${report.global_step}/${report.total_steps}, ${(report.left_ms / 1000).toFixed(0)} s left in this row`;
}

/** The training views the experiment may train on: the core's static views. */
export function trainViewChoices(views) {
  $('train-view').append(...views.map((v) => new Option(v, v)));
}

export function wireFineTuning() {
  listeners.job = jobEvent;

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

  $('mode').onchange = () => { modeControls(); saveState(); };

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
      const result = await call('runJob', { options: { ...options, name: $('run-name').value }, weights, twin: chosenTwin() });
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
      const result = await call('runJob', { options, weights, twin: chosenTwin() });
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
  $('export-curves').onclick = guard(async () => download('lens2logit_curves.csv', await call('resultsCsv'), 'text/csv'));
  $('export-timeline').onclick = guard(async () => download('lens2logit_timeline.gif', await call('timelineGif'), 'image/gif'));
  $('export-model').onclick = guard(async () => download('model.safetensors', await call('saveModel'), 'application/octet-stream'));
  $('export-isp').onclick = guard(async () => download('isp.safetensors', await call('saveIsp'), 'application/octet-stream'));
}
