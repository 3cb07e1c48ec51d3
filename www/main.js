// UI thread: lays out what the worker computes and forwards the user's choices. No computation
// here: images, histograms, heatmaps, metrics and files all come from the Rust core.
//
// This entry wires the modules under js/ together: one per panel (data with its tile browser,
// camera, static pipeline, parametrized processing, fine-tuning with its results, the camera
// fit, lab log) over the worker's connection, the URL state, images and the error banner.
// Importing them does nothing but define; everything starts here, once the page is cross-origin
// isolated.

import { isolate } from './coi.js';
import { wireCamera } from './js/camera.js';
import { wireCameraFit } from './js/camera-fit.js';
import { load, sourceControls, wireData } from './js/data.js';
import { $, markOverflowingBoxes } from './js/dom.js';
import { initCharts, modeControls, trainViewChoices, wireFineTuning } from './js/fine-tuning.js';
import { draw, wireImages } from './js/images.js';
import { refreshRuns, sqlExamples, wireLabLog } from './js/lab-log.js';
import { wireProcessing } from './js/processing.js';
import { applySettings, lab, restoreControls } from './js/state.js';
import { viewChoices, wireStaticPipeline } from './js/static-pipeline.js';
import { guard, wireStatus } from './js/status.js';
import { wireTiles } from './js/tiles.js';
import { initWorker, onRestart, startWorker, urlOrigins, wireBackendSwitch } from './js/worker-client.js';

// on a host that cannot send COOP/COEP, a service worker adds them (one reload, first visit)
await isolate();

wireStatus();
markOverflowingBoxes();
startWorker(urlOrigins());
// a worker that takes over from a crashed one loads the tiles the page's settings name again
onRestart(load);
wireImages();
wireData();
wireCamera();
wireTiles();
wireStaticPipeline();
wireProcessing();
wireFineTuning();
wireCameraFit();
wireLabLog();
wireBackendSwitch();

guard(async () => {
  const ready = await initWorker();
  lab.views = ready.views;
  lab.paramSpecs = ready.params;
  applySettings(ready.settings);
  sqlExamples(ready.sqlExamples);
  draw($('legend'), ready.legend);
  viewChoices();
  trainViewChoices(lab.views);
  restoreControls();
  sourceControls();
  modeControls();
  initCharts();
  await refreshRuns();
  await load();
})();
