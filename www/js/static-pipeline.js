// 2. The static pipeline: the selected tile stage by stage with histograms, its 12 static views
// and the paper's own views of it; the demosaicing, sharpening and denoising choices.

import uPlot from '../vendor/uplot/uPlot.esm.js';
import { $ } from './dom.js';
import { figure } from './images.js';
import { runIsp } from './processing.js';
import { currentView, lab, saveState, values } from './state.js';
import { guard } from './status.js';
import { call } from './worker-client.js';

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

export async function selectTile(index) {
  values.tile = index;
  for (const [i, b] of [...$('tiles').children].entries()) b.setAttribute('aria-current', String(i === index));
  await call('select', { index });
  await Promise.all([showStages(), showViews(), runIsp()]);
  saveState();
}

export const showStages = guard(async () => {
  const stages = await call('stages', { view: currentView() });
  const strip = $('stages');
  strip.replaceChildren();
  for (const stage of stages) {
    const fig = figure(strip, stage.name, stage.image, `${stage.name} of the selected tile`);
    histogram(fig, stage.histogram);
  }
});

export const showViews = guard(async () => {
  const images = await call('views');
  const grid = $('views');
  grid.replaceChildren();
  const { views } = lab;
  images.forEach((image, i) => figure(grid, views[i].replaceAll('-', ' \u00b7 '), image, `view ${views[i]}`));
  document.body.dataset.views = String(images.length);
  const paper = await call('paperViews');
  const strip = $('paper-views');
  strip.replaceChildren();
  for (const { label, image } of paper) figure(strip, label, image, `the paper's own ${label} view`);
  $('paper-views-section').hidden = paper.length === 0;
  document.body.dataset.paperViews = String(paper.length);
});

/** The demosaicing, sharpening and denoising choices: the parts of the core's views' names. */
export function viewChoices() {
  const names = (k) => [...new Set(lab.views.map((v) => v.split('-')[k]))];
  for (const [k, id] of ['debayer', 'sharpening', 'denoising'].entries()) {
    $(id).replaceChildren(...names(k).map((n) => new Option(n, n)));
  }
  $('sharpening').value = 'unsharp_masking';
}

export function wireStaticPipeline() {
  for (const id of ['debayer', 'sharpening', 'denoising']) {
    $(id).onchange = guard(async () => { saveState(); await Promise.all([showStages(), runIsp()]); });
  }
}
