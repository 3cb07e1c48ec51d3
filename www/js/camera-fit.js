// 5. Fit my camera: a DNG and the camera's JPEG of the same shot, fitted into a twin of the
// camera's processing by the core; the fit's progress (held-out PSNR), the camera's JPEG beside
// the twin and their difference, the twin's files, and the twin as a 13th drift view for sessions.

import { $, dropZone } from './dom.js';
import { download, figure } from './images.js';
import { refreshRuns } from './lab-log.js';
import { guard, setStatus, showError } from './status.js';
import { call, listeners } from './worker-client.js';

/** The last fitted twin, which sessions test on where the user asks. */
const fitted = { files: null, name: '' };

/** The twin a session tests on ({bytes, name}), or none. */
export const chosenTwin = () => ($('fit-use').checked && fitted.files
  ? { bytes: fitted.files.safetensors.slice(), name: fitted.name }
  : null);

function fitEvent(e) {
  if (e.kind === 'alignment') {
    $('fit-alignment').value = e.text;
    return;
  }
  $('fit-progress').max = e.steps;
  $('fit-progress').value = e.step;
  const psnr = e.heldOutPsnr == null ? '' : `, held-out PSNR ${e.heldOutPsnr.toFixed(2)} dB`;
  if (e.heldOutPsnr != null || e.step === 1) $('fit-rate').value = `step ${e.step}/${e.steps}, loss ${e.loss.toExponential(2)}${psnr}`;
  document.body.dataset.fitStep = String(e.step);
}

async function fit(files) {
  const out = $('fit-result');
  out.replaceChildren();
  for (const id of ['fit-safetensors', 'fit-json', 'fit-png', 'fit-use']) $(id).disabled = true;
  $('fit-start').disabled = true;
  $('fit-cancel').disabled = false;
  $('fit-alignment').value = '';
  try {
    const read = async (f) => ({ bytes: new Uint8Array(await f.arrayBuffer()), name: f.name });
    const result = await call('fitCamera', { files: await Promise.all(files.map(read)), steps: Number($('fit-steps').value) });
    const s = result.summary;
    fitted.files = result;
    fitted.name = s.name;
    figure(out, 'the camera\'s JPEG', result.jpeg);
    figure(out, 'the twin', result.rendered);
    figure(out, '|twin - JPEG| x 4', result.difference);
    $('fit-rate').value = `held-out PSNR ${s.held_out_psnr.toFixed(2)} dB (the DNG's camera before the fit: ${s.initial_held_out_psnr.toFixed(2)} dB), SSIM ${s.held_out_ssim.toFixed(4)}; stages: paper ISP, ${s.stages.join(', ')}`;
    for (const id of ['fit-safetensors', 'fit-json', 'fit-png', 'fit-use']) $(id).disabled = false;
    document.body.dataset.fitted = s.held_out_psnr.toFixed(2);
    if (result.saveError) showError(`the fit's run could not be kept in the lab log: ${result.saveError}`);
    else setStatus(`Camera twin ${s.name} fitted; its run is in the lab log`);
    await refreshRuns();
  } finally {
    $('fit-start').disabled = false;
    $('fit-cancel').disabled = true;
  }
}

export function wireCameraFit() {
  listeners.fit = fitEvent;
  $('fit-start').onclick = guard(() => fit([...$('fit-files').files]));
  $('fit-cancel').onclick = () => call('cancelFit');
  dropZone($('fit-drop'), guard(fit));
  $('fit-safetensors').onclick = () => download('twin.safetensors', fitted.files.safetensors, 'application/octet-stream');
  $('fit-json').onclick = () => download('twin.json', fitted.files.summaryJson, 'application/json');
  $('fit-png').onclick = () => download('rendered.png', fitted.files.renderedPng, 'image/png');
}
