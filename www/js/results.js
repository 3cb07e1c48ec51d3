// A session's results as the fine-tuning panel and the lab log show them: final metrics, the
// drift table, the corruption baseline, the attacks' drops with their adversarial views, and the
// gradient timeline's rows; the phases' colours.

import uPlot from '../vendor/uplot/uPlot.esm.js';
import { $ } from './dom.js';
import { figure } from './images.js';

export const PALETTE = ['#0b5cad', '#c2410c', '#15803d', '#7e22ce', '#be123c', '#0e7490', '#a16207', '#4d7c0f', '#9d174d'];

/** A snapshot's two rows into `gradients` and `outputs`: the paper's timeline, stage by stage. */
export function timelineRows(s, gradients, outputs) {
  gradients.replaceChildren();
  outputs.replaceChildren();
  s.images.forEach((image, k) => figure(gradients, `|dL/d ${s.stages[k]}| (max ${s.maxima[k].toExponential(1)})`, image));
  s.outputs.forEach((image, k) => figure(outputs, `${s.stages[k]} output`, image));
}

export function showResults({ summary, adversarial, finished }, out = $('results')) {
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

/** The post-hoc corruption baseline: the training view corrupted, beside the drift table. */
function corruptionTable(summary) {
  return numberTable('corruptions', `Post-hoc corruption of the training view (severity ${$('corruption').value})`,
    ['corruption', summary.metric, 'drop'], Object.entries(summary.corruptions).map(([name, values]) => [name, ...values]));
}
