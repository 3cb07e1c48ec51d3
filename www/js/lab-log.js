// 5. The lab log: the stored runs (filtered, sorted), one opened or several compared, exported,
// imported, deleted, logged to an MLflow tracking server, and asked SQL queries.

import uPlot from '../vendor/uplot/uPlot.esm.js';
import { load } from './data.js';
import { $ } from './dom.js';
import { download } from './images.js';
import { PALETTE, showResults, timelineRows } from './results.js';
import { saveState } from './state.js';
import { guard, setStatus } from './status.js';
import { call, listeners, reachOrigins } from './worker-client.js';

const selectedRuns = () => [...document.querySelectorAll('#runs-table input:checked')].map((box) => box.value);

export const refreshRuns = guard(async () => {
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

/** Logs stored runs to the MLflow server the page names; a failure leaves them in the lab log. */
export async function logToMlflow(ids) {
  const status = $('mlflow-status');
  for (const id of ids) {
    try {
      const mlflowRun = await call('logRun', { id, url: $('mlflow').value, experiment: $('mlflow-experiment').value || 'lens2logit' });
      status.value = `logged run ${id} as MLflow run ${mlflowRun}`;
    } catch (error) {
      status.value = '';
      throw new Error(`${error.message} (run ${id} stays in the lab log; log it again from there)`);
    }
  }
  document.body.dataset.mlflowLogged = String(ids.length);
}

/** The example questions of the SQL box, from the core. */
export function sqlExamples(examples) {
  $('sql-example').append(...examples.map(({ title, sql }) => new Option(title, sql)));
}

/** The answer to the SQL box's query, as a table (and CSV to download). */
const runQuery = guard(async () => {
  const status = $('sql-status');
  const table = $('sql-answer');
  table.replaceChildren();
  $('sql-csv').disabled = true;
  status.value = 'querying...';
  let answer;
  try {
    answer = await call('sqlQuery', { sql: $('sql').value });
  } catch (error) {
    status.value = error.message;
    document.body.dataset.sql = 'error';
    return;
  }
  const header = table.insertRow();
  for (const name of answer.columns) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = name;
    header.append(th);
  }
  for (const values of answer.rows) {
    const row = table.insertRow();
    for (const v of values) row.insertCell().textContent = v ?? '';
  }
  const more = answer.truncated ? ' (the first rows only: the query has more; narrow it or add a LIMIT)' : '';
  status.value = `${answer.rows.length} ${answer.rows.length === 1 ? 'row' : 'rows'}${more} · database ${answer.storage}`;
  $('sql-csv').onclick = () => download('lens2logit_query.csv', answer.csv, 'text/csv');
  $('sql-csv').disabled = false;
  document.body.dataset.sql = String(answer.rows.length);
  document.body.dataset.sqlAdded = String(answer.added);
});

export function wireLabLog() {
  $('sql-example').onchange = () => {
    if ($('sql-example').value) $('sql').value = $('sql-example').value;
  };
  $('sql-run').onclick = runQuery;
  for (const k of ['mode', 'model', 'view', 'dataset', 'sort']) $(`runs-${k}`).onchange = refreshRuns;
  $('runs-text').oninput = refreshRuns;

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

  listeners.mlflow = ({ done, total }) => { $('mlflow-status').value = `uploading artifacts ${done}/${total}`; };
  $('mlflow').onchange = guard(async () => {
    saveState();
    // the worker may reach the server only if its policy names it: a new one may take over
    if (await reachOrigins('the MLflow server changed')) await load();
  });
  $('mlflow-experiment').onchange = saveState;
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
}
