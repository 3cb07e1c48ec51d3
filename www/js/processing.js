// 3. Parametrized processing: every parameter of the differentiable ISP editable (a re-render
// shortly after an edit), reset, upload and download; its stages and gradient heatmaps.

import { $ } from './dom.js';
import { download, figure } from './images.js';
import { currentView, lab, saveState, values } from './state.js';
import { guard } from './status.js';
import { call } from './worker-client.js';

function paramEditor() {
  const editor = $('param-editor');
  editor.replaceChildren();
  let at = 0;
  for (const { name, shape } of lab.paramSpecs) {
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
      input.value = Number(lab.paramValues[at + k].toPrecision(5));
      input.setAttribute('aria-label', `${name} value ${k + 1}`);
      const index = at + k;
      input.oninput = () => { lab.paramValues[index] = Number(input.value); scheduleIsp(); };
      grid.append(input);
    }
    set.append(legend, grid);
    editor.append(set);
    at += size;
  }
}

export async function refreshParams() {
  if (values.params) {
    const restored = values.params.split(',').map(Number);
    const expected = lab.paramSpecs.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
    if (restored.length === expected) await call('setParams', { values: restored });
  }
  lab.paramValues = await call('params');
  paramEditor();
}

let ispTimer = null;
function scheduleIsp() {
  clearTimeout(ispTimer);
  ispTimer = setTimeout(guard(async () => {
    await call('setParams', { values: lab.paramValues });
    values.params = lab.paramValues.join(',');
    saveState();
    await runIsp();
  }), 150);
}

export const runIsp = guard(async () => {
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

export function wireProcessing() {
  $('param-gradients').onchange = runIsp;
  $('reset-params').onclick = guard(async () => { await call('resetParams'); values.params = null; await refreshParams(); saveState(); await runIsp(); });
  $('download-params').onclick = guard(async () => download('isp_parameters.safetensors', await call('saveParams'), 'application/octet-stream'));
  $('upload-params').onchange = guard(async (e) => {
    const bytes = new Uint8Array(await e.target.files[0].arrayBuffer());
    await call('loadParams', { bytes }, [bytes.buffer]);
    lab.paramValues = await call('params');
    values.params = null;
    paramEditor();
    await runIsp();
  });
}
