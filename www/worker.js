// Compute worker: loads the wasm module and forwards the page's requests to the Rust facade.
// Requests are {id, method, args}; answers {id, result} or {id, error}; long work also posts
// {type: 'event', channel, data}. Images travel as {width, height, rgba} with their buffer moved.

// The module is chosen at init: the threaded build (rayon over a pool of Web Workers) needs
// SharedArrayBuffer, which a browser grants only to a cross-origin isolated page; elsewhere the
// single-threaded build runs the same code on this worker alone.
import * as store from './runs-store.js';

let wasm = null;
let memory = null;
let lab = null;
let fetchControl = null;
let trainControl = null;
let fitControl = null;
let trainer = null;
let labLog = null;

/**
 * A module the page loads on first use (pkg/labdb/, pkg/dng/), started. scripts/serve.sh builds
 * these while it already serves the page, so a failed load is tried again at the next use; since
 * some browsers keep a failed import failed for the page's life, a retry asks for a new URL.
 */
const lazyTries = new Map();
async function importLazy(path) {
  const tries = lazyTries.get(path) ?? 0;
  try {
    const module = await import(tries ? `${path}?try=${tries}` : path);
    await module.default();
    return module;
  } catch (error) {
    lazyTries.set(path, tries + 1);
    throw error;
  }
}

/** The SQL module, loaded, and the lab log's database it opens. */
async function openLabLog() {
  const sql = await importLazy('./pkg/labdb/lens2logit_labdb.js').catch((e) => {
    throw new Error(`the lab log's SQL module (pkg/labdb/) could not be loaded (${e.message}): scripts/serve.sh builds it in the minutes after it starts serving the page, so ask again then; elsewhere, check that the server serves pkg/labdb/`);
  });
  return sql.LabLog.open();
}

/** The DNG module (its DNG and JPEG decoders), loaded when the core first needs it (crate/web/dng.rs). */
let dngModule = null;
self.lens2logitDngModule = () => {
  dngModule ??= importLazy('./pkg/dng/lens2logit_dng.js').then((dng) => ({ decodeDng: dng.decodeDng, decodeJpeg: dng.decodeJpeg, orientRgb8: dng.orientRgb8 })).catch((error) => {
    dngModule = null;
    throw error;
  });
  return dngModule;
};

/** `target`, where the module has the benchmarks' entry points. */
function benchmarks(target) {
  if (!target.benchViews && !target.benchMatrixProducts) throw new Error('this page module was built without the benchmarks: rebuild it with LENS2LOGIT_BENCH=1 scripts/serve.sh');
  return target;
}

/** A Rust RgbaImage as a transferable object. */
function image(img) {
  const out = { width: img.width, height: img.height, rgba: img.takeRgba() };
  img.free();
  return out;
}

const transferables = (value) => {
  const list = [];
  const walk = (v) => {
    if (v && v.rgba instanceof Uint8Array) list.push(v.rgba.buffer);
    else if (v instanceof Uint8Array) list.push(v.buffer);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(value);
  return list;
};

/** A snapshot's two timeline rows as images: the stages' |gradient| and (where kept) outputs. */
const timelineImages = (source, s) => ({
  ...s,
  images: s.stages.map((_, k) => image(source.snapshotImage(s.index, k, s.maxima[k]))),
  outputs: s.outputs ? s.stages.map((_, k) => image(source.snapshotOutput(s.index, k))) : [],
});

/** `read(view)` of a run zip opened (and checked) by the core. */
function readRun(zip, read) {
  const view = new wasm.RunView(new Uint8Array(zip));
  try {
    return read(view);
  } finally {
    view.free();
  }
}

const event = (channel, data) => postMessage({ type: 'event', channel, data }, transferables(data));

function ispImages(result, gradients) {
  const names = wasm.IspResult.stageNames();
  const stages = names.map((name, i) => ({ name, image: image(result.stageImage(i)) }));
  const out = { output: image(result.outputImage()), stages };
  if (gradients && result.hasGradients()) {
    out.gradients = names.map((name, i) => {
      const max = result.gradientScale(i);
      return { name, max, image: image(result.gradientImage(i, max)) };
    });
    out.paramGradients = Array.from(result.paramGradients());
  }
  result.free();
  return out;
}

/** `work(control)` with a FetchControl that `cancelFetch` reaches while it runs. */
async function withFetchControl(work) {
  fetchControl = new wasm.FetchControl();
  try {
    return await work(fetchControl);
  } finally {
    fetchControl.free();
    fetchControl = null;
  }
}

const methods = {
  async init({ preferGpu, threads }) {
    let threaded = threads !== 1 && self.crossOriginIsolated;
    wasm = await import(threaded ? './pkg/threads/lens2logit.js' : './pkg/lens2logit.js').catch((e) => {
      // scripts/serve.sh builds the one-thread module only for --host: isolated, the threaded
      // module on one thread computes the same
      if (threaded || !self.crossOriginIsolated) {
        throw new Error(`the page's module could not be loaded (${e.message}): ${threaded ? '' : 'this page is not cross-origin isolated, so it needs the one-thread module pkg/lens2logit.js, which scripts/serve.sh builds only with --host; '}rebuild with scripts/serve.sh or scripts/build-site.sh`);
      }
      threaded = true;
      return import('./pkg/threads/lens2logit.js');
    });
    memory = (await wasm.default()).memory;
    if (threaded) await wasm.initThreadPool(Math.max(1, threads || navigator.hardwareConcurrency || 1));
    const Lab = wasm.Lab;
    lab = await Lab.create(preferGpu);
    return { settings: Lab.settings(), sqlExamples: wasm.sqlExamples(), backend: lab.backend, gpu: lab.isGpu, threads: Lab.threads(), isolated: self.crossOriginIsolated, views: Lab.viewNames(), params: Lab.paramNames().map((n) => ({ name: n, shape: Array.from(Lab.paramShape(n)) })), legend: image(Lab.colourLegend(256, 12)) };
  },
  loadChart: ({ size }) => { lab.loadChart(size); return { count: 1, task: lab.task }; },
  setCamera: ({ camera }) => lab.setCamera(camera),
  cameraInfo: () => lab.cameraInfo(),
  setCameraPreset: ({ name }) => lab.setCameraPreset(name),
  // `source`: upload (a file) or edited (the page's fields)
  setCameraJson: ({ text, source }) => lab.setCameraJson(text, source),
  loadSynthetic: ({ task, n, seed, size }) => ({ count: lab.loadSynthetic(task, n, seed, size), task: lab.task }),
  // source: {base, record, dataset, intensity, limit, task, seed, droneBalance ('balanced' or 'all')}
  streamZenodo: (source) => withFetchControl(async (control) => {
    const count = await lab.streamZenodo(source, control, (e) => event('fetch', e));
    return { count, task: lab.task };
  }),
  // a plain-text report of what the record holds; what is being read goes out as 'inspect' events
  inspectRecord: ({ base, record, dataset }) => withFetchControl((control) => lab.inspectRecord({ base, record, dataset }, control, (what) => event('inspect', what))),
  cancelFetch: () => fetchControl?.cancel(),
  loadCached: async ({ record, dataset, intensity, task }) => ({ count: await lab.loadCached(record, dataset, intensity, task), task: lab.task }),
  clearCache: () => lab.clearCache(),
  loadFile: async ({ name, bytes }) => ({ count: await lab.loadFile(name, bytes), task: lab.task }),
  tileInfo: ({ index }) => lab.tileInfo(index),
  thumbnail: ({ index, view }) => image(lab.thumbnail(index, view)),
  maskOverlay: ({ index }) => image(lab.maskOverlay(index)),
  select: ({ index }) => lab.select(index),
  stages({ view }) {
    const set = lab.stages(view);
    const names = set.names();
    const out = names.map((name, i) => ({ name, image: image(set.image(i)), histogram: set.histogram(i) }));
    set.free();
    return out;
  },
  views: () => lab.renderViews().map(image),
  paperViews: () => lab.paperViews().map((v) => {
    const out = { label: v.label, image: image(v.takeImage()) };
    v.free();
    return out;
  }),
  params: () => Array.from(lab.params()),
  setParams: ({ values }) => lab.setParams(new Float32Array(values)),
  resetParams: () => lab.resetParams(),
  loadParams: ({ bytes }) => lab.loadParams(bytes),
  saveParams: () => lab.saveParams(),
  runIsp: async ({ gradients, view }) => ispImages(await lab.runIsp(gradients, view), gradients),
  // weights by URL, from the browser's cache or fetched into it
  fetchWeights: ({ url }) => lab.fetchWeights(url),
  // a job: a session, or the 12-view synthesis experiment ({experiment: 'synthesis'}); `name`
  // labels its runs in the lab log, `weights` ({bytes, name, url}) starts the model from a file,
  // `twin` ({bytes, name}, a fitted camera twin) is tested on as a 13th view
  async runJob({ options, weights, twin }) {
    trainer?.free();
    trainer = new wasm.Trainer(lab, options);
    if (twin) trainer.testOnTwin(twin.bytes, twin.name);
    if (weights) event('job', { kind: 'weights', ...trainer.startFrom(weights.bytes, weights.name, weights.url ?? undefined) });
    trainControl = new wasm.TrainControl();
    const runs = [];
    const { finished, saveErrors } = await trainer.run(trainControl, {
      progress: (e) => event('job', e),
      keep: async (meta, zip) => {
        await store.putRun(meta, zip);
        runs.push(meta);
      },
    });
    const summary = trainer.summary();
    const adversarial = trainer.adversarialGroups().map((group, i) => ({ group, image: image(trainer.adversarialImage(i)) }));
    const result = { finished, summary, adversarial, runs, run: runs.at(-1), saveError: saveErrors[0] ?? null };
    if (options.experiment === 'synthesis' && finished) {
      Object.assign(result, { matrixCsv: trainer.matrixCsv(), intensityCsv: trainer.intensityCsv(), tableJson: trainer.tableJson(), matrix: image(trainer.matrixImage()), intensity: image(trainer.intensityImage()) });
    }
    return result;
  },
  // the lab log
  async listRuns({ selection }) {
    const all = await store.listRuns();
    return { ...wasm.selectRuns(all, selection), total: all.length, usage: (await store.usage()).text };
  },
  async openRun({ id }) {
    return readRun(await store.getZip(id), (view) => ({
      meta: view.meta(),
      summary: view.summary(),
      curves: view.curves(),
      snapshots: view.snapshots().map((s) => timelineImages(view, s)),
      adversarial: view.adversarialGroups().map((group, i) => ({ group, image: image(view.adversarialImage(i)) })),
    }));
  },
  async compareRuns({ ids }) {
    const runs = [];
    for (const id of ids) runs.push(readRun(await store.getZip(id), (view) => ({ meta: view.meta(), curves: view.curves() })));
    return runs;
  },
  deleteRuns: ({ ids }) => store.deleteRuns(ids),
  // the lab log's SQL database: its module (SQLite) loaded on first use, the database opened
  // from OPFS, and brought in step with the store before each query
  async sqlQuery({ sql }) {
    labLog ??= openLabLog();
    let log;
    try {
      log = await labLog;
    } catch (error) {
      labLog = null;
      throw error;
    }
    const ids = (await store.listRuns()).map((meta) => meta.id);
    const added = log.retain(ids);
    for (const id of added) log.add(wasm.sqlRows(new Uint8Array(await store.getZip(id))));
    return { ...log.query(sql), storage: log.storage, added: added.length };
  },
  exportRun: async ({ id }) => ({ name: `lens2logit_run_${id}.zip`, zip: new Uint8Array(await store.getZip(id)) }),
  logRun: async ({ id, url, experiment }) => wasm.logRunToMlflow(url, experiment, new Uint8Array(await store.getZip(id)), (done, total) => event('mlflow', { done, total })),
  async importRun({ bytes }) {
    const meta = readRun(bytes, (view) => view.meta());
    if (await store.hasRun(meta.id)) throw new Error(`run ${meta.id} (${meta.name}) is already in the lab log`);
    await store.putRun(meta, bytes);
    return meta;
  },
  // a camera fit: `files` ([{bytes, name}], a DNG and its JPEG); its steps go out as 'fit' events
  async fitCamera({ files, steps }) {
    fitControl = new wasm.TrainControl();
    try {
      const twin = await lab.fitCamera(files, steps, fitControl, (e) => event('fit', e));
      // the fit is a run of the lab log (a full storage is reported; the twin stands)
      const run = twin.runMeta();
      const saveError = await store.putRun(run, twin.runZip()).then(() => null, (e) => e.message);
      const summaryJson = twin.summaryJson();
      const out = { run, saveError, summary: JSON.parse(summaryJson), safetensors: twin.safetensors(), summaryJson, renderedPng: twin.renderedPng(), jpeg: image(twin.jpegImage()), rendered: image(twin.renderedImage()), difference: image(twin.differenceImage()) };
      twin.free();
      return out;
    } finally {
      fitControl.free();
      fitControl = null;
    }
  },
  cancelFit: () => fitControl?.cancel(),
  pause: () => trainControl?.pause(),
  resume: () => trainControl?.resume(),
  cancel: () => trainControl?.cancel(),
  saveModel: () => trainer.saveModel(),
  resultsCsv: () => trainer.resultsCsv(),
  timelineGif: () => trainer.timelineGif(),
  runTimelineGif: async ({ id }) => readRun(await store.getZip(id), (view) => view.timelineGif()),
  // benchmarks (tests/bench/run.mjs): the same code a session runs, timed in this worker, in
  // modules built with them (LENS2LOGIT_BENCH=1 scripts/serve.sh)
  benchViews: ({ repeats }) => benchmarks(lab).benchViews(repeats),
  benchMatrixProducts: ({ repeats }) => benchmarks(wasm.Lab).benchMatrixProducts(repeats),
  benchTrainStep: async ({ model, batch, size, steps, frozenBackbone, gpu }) => ({ ...(await benchmarks(lab).benchTrainStep(model, batch, size, steps, Boolean(frozenBackbone), Boolean(gpu))), wasmMemoryMb: memory.buffer.byteLength / 2 ** 20 }),
  saveIsp: () => trainer.saveIsp(),
};

// Control requests (pause, cancel) must not wait behind long work; everything else runs in order.
const immediate = new Set(['pause', 'resume', 'cancel', 'cancelFetch', 'cancelFit']);
let queue = Promise.resolve();

self.onmessage = ({ data: { id, method, args } }) => {
  const run = async () => {
    try {
      const result = await methods[method](args ?? {});
      postMessage({ id, result }, transferables(result));
    } catch (error) {
      // a trap (a Rust panic aborts, so does a failed allocation) leaves the module unusable
      const fatal = error instanceof WebAssembly.RuntimeError;
      postMessage({ id, error: error instanceof Error ? error.message : String(error), fatal });
    }
  };
  if (immediate.has(method)) run();
  else queue = queue.then(run);
};
