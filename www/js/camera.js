// The camera panel: the camera and its source (preset, synthetic, a DNG's metadata, an uploaded
// or edited JSON), every value editable, Save camera JSON; a new camera draws everything again.

import { $ } from './dom.js';
import { download } from './images.js';
import { refreshParams, runIsp } from './processing.js';
import { saveState, values } from './state.js';
import { showStages, showViews } from './static-pipeline.js';
import { guard, setStatus } from './status.js';
import { thumbnail } from './tiles.js';
import { call } from './worker-client.js';

/** The camera panel's inputs by the camera JSON's keys. */
const cameraInputs = () => Object.fromEntries([...$('camera').querySelectorAll('fieldset[data-camera]')]
  .map((set) => [set.dataset.camera, [...set.querySelectorAll('input')]]));
let cameraParams = {};

/** The camera and its source into the panel; it asks for one where the tiles carry none. */
export async function showCamera() {
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

export function wireCamera() {
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
}
