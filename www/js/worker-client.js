// The compute worker: starting it (with the origins its policy names), calls and their replies,
// its event channels, and a new worker when one crashes or must reach another origin.

import { $ } from './dom.js';
import { guard, showError } from './status.js';
import { url } from './state.js';

let worker = null;
const pending = new Map();
/** A handler per event channel the worker sends on (fetch, inspect, job, mlflow). */
export const listeners = {};
let nextId = 0;
let restarts = 0;
/** The origins beyond this page's and Zenodo's that the current worker may connect to (its CSP names them). */
let workerOrigins = [];
/** What loads the page's data into a new worker that took over from a crashed one. */
let reload = async () => {};

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

export function startWorker(origins) {
  workerOrigins = origins;
  const script = new URL('../worker.js', import.meta.url);
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

/** The origins the URL's settings need the first worker to reach. */
export const urlOrigins = () => ['zenodo', 'mlflow', 'weights-url']
  .map((k) => extraOrigin(new URLSearchParams(location.search).get(k))).filter(Boolean);

/** Sets what loads the page's data again after a crash (the data panel's load). */
export function onRestart(load) {
  reload = load;
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
    await reload();
    showError(`${note} A new one was started with this page's settings.`);
  })();
}

/** Calls a method of the core's facade in the worker; resolves to its result. */
export const call = (method, args = {}, transfer = []) => new Promise((resolve, reject) => {
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
export async function reachOrigins(reason) {
  const want = wantedOrigins();
  if (want.join(' ') === workerOrigins.join(' ')) return false;
  stopWorker(reason);
  startWorker(want);
  await initWorker();
  return true;
}

/** The backend the URL asks for (?backend=cpu), WebGPU otherwise. */
const backend = url.get('backend') === 'cpu' ? 'cpu' : 'gpu';

/** The header's button that reloads the page on the other backend. */
export function wireBackendSwitch() {
  $('switch-backend').textContent = backend === 'cpu' ? 'Use WebGPU' : 'Use CPU';
  $('switch-backend').onclick = () => {
    const next = new URLSearchParams(location.search);
    next.set('backend', backend === 'cpu' ? 'gpu' : 'cpu');
    location.search = next.toString();
  };
}

/** Starts the core in the worker and shows what it runs on. */
export async function initWorker() {
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
