// Benchmarks (never a timed test): each runs the reference and ours in the same session and prints
// the ratios. `node tests/bench/run.mjs NAME` (static_views, views_dir, matrix_products, train_step,
// ...) after `LENS2LOGIT_BENCH=1 scripts/serve.sh` has built pkg/ (with the benchmarks' entry
// points, which the modules the page serves leave out) and the CLI. Figures depend on the machine:
// compare ratios, not seconds.

import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inWorker, launch, root, startServer } from '../e2e/harness.mjs';

const demo = process.env.LENS2LOGIT_DEMO_DATA || join(root, '..', 'shared', 'data', 'raw2logit-demo');

// The reference's interpreter: one with torch, numpy, scipy, colour-demosaicing (PYTHON=...).
const python = process.env.PYTHON || 'python3';

function json(cmd, args) {
  const out = execFileSync(cmd, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out.trim().split('\n').pop());
}

/** Runs `body(lab)` in a page that imports the wasm module directly (main thread, CPU backend). */
async function inBrowser(body, arg) {
  const server = await startServer();
  const browser = await launch({ webgpu: true });
  try {
    const page = await browser.newPage();
    await page.goto(server.url);
    return await page.evaluate(body, arg);
  } finally {
    await browser.close();
    server.stop();
  }
}

/** Runs `body(page)` on the lab page as `lens2logit serve` serves it (cross-origin isolated). */
async function inLabPage(body) {
  const server = await startServer();
  const browser = await launch({ webgpu: true });
  try {
    const page = await browser.newPage();
    await page.goto(`${server.url}?backend=cpu`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 });
    return await body(page);
  } finally {
    await browser.close();
    server.stop();
  }
}

const benches = {
  async static_views() {
    const repeats = 20;
    const py = json(python, ['tests/reference/static_views.py', '--bench', String(repeats)]);
    const native = json('cargo', ['bench', '--quiet', '--bench', 'static_views', '--', join(demo, 'micro.png'), '50']);
    const tile = new Uint8Array(readFileSync(join(demo, 'micro.png')));
    // in the lab's worker, threaded (as served) and on one thread
    const browser = {};
    await inLabPage(async (page) => {
      for (const threads of [undefined, 1]) {
        const [ready, , , ms] = await inWorker(page, [
          ['init', { preferGpu: false, threads }], ['setCamera', { camera: 'microscopy' }],
          ['loadFile', { name: 'micro.png', bytes: tile }], ['benchViews', { repeats }],
        ]);
        browser[ready.threads] = ms / 1000;
      }
    });
    const p = py.python_all_12_views_s;
    const rows = [
      ['Python (numpy, scipy, colour-demosaicing)', p],
      [`native (${native.threads} threads)`, native.native_all_12_views_s],
      ...Object.entries(browser).map(([n, s]) => [`browser (wasm SIMD, ${n} thread${n > 1 ? 's' : ''}, incl. RGBA)`, s]),
    ];
    console.log('All 12 static views of one 256x256 tile (median):');
    for (const [name, s] of rows) {
      console.log(`  ${name.padEnd(44)} ${(s * 1000).toFixed(2).padStart(8)} ms   ${(p / s).toFixed(1).padStart(6)}x`);
    }
  },
};

// `views DIR --all` on 16 tiles against the Python reference doing the same (every view written as
// .npy), each timed as a whole process, as a user runs it: the median of 7 runs.
benches.views_dir = async function viewsDir() {
  const work = mkdtempSync(join(tmpdir(), 'views-dir-'));
  const tiles = join(work, 'tiles');
  mkdirSync(tiles);
  for (let i = 1; i <= 16; i++) copyFileSync(join(demo, 'micro.png'), join(tiles, `t${String(i).padStart(2, '0')}.png`));
  const cli = join(root, 'target', 'release', 'lens2logit');
  const commands = {
    'Python (numpy, scipy, colour-demosaicing)': [python, ['tests/reference/static_views.py', '--views-dir', tiles]],
    native: [cli, ['views', tiles, '--camera', 'microscopy', '--all', '--out']],
  };
  // the two sides take turns, so that a slower spell of a shared machine falls on both
  const times = Object.fromEntries(Object.keys(commands).map((name) => [name, []]));
  for (let run = 0; run < 7; run++) {
    for (const [name, [cmd, args]] of Object.entries(commands)) {
      const out = join(work, 'out');
      rmSync(out, { recursive: true, force: true });
      const start = process.hrtime.bigint();
      const done = spawnSync(cmd, [...args, out], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
      times[name].push(Number(process.hrtime.bigint() - start) / 1e9);
      if (done.status !== 0) throw new Error(`${name} failed: ${done.stderr}`);
      const written = readdirSync(out).flatMap((t) => readdirSync(join(out, t))).length;
      if (written !== 16 * 12) throw new Error(`${name} wrote ${written} files, not 192`);
    }
  }
  const seconds = Object.fromEntries(Object.entries(times).map(([name, t]) => {
    t.sort((a, b) => a - b);
    return [name, t[t.length >> 1]];
  }));
  rmSync(work, { recursive: true, force: true });
  const p = seconds['Python (numpy, scipy, colour-demosaicing)'];
  console.log('12 views of 16 256x256 tiles written as .npy, whole process (median of 7, taking turns):');
  for (const [name, s] of Object.entries(seconds)) {
    console.log(`  ${name.padEnd(44)} ${(s * 1000).toFixed(0).padStart(8)} ms   ${(p / s).toFixed(1).padStart(6)}x`);
  }
};

benches.param_isp = async function paramIsp() {
  const torch = json(python, ['tests/reference/param_isp.py', '--bench', '10']);
  const native = json('cargo', ['bench', '--quiet', '--bench', 'param_isp', '--', '10']);
  const browser = {};
  for (const gpu of [false, true]) {
    Object.assign(browser, await inBrowser(async ({ gpu }) => {
      const wasm = await import('/pkg/lens2logit.js');
      await wasm.default();
      const lab = await wasm.Lab.create(gpu);
      const out = {};
      for (const b of [1, 8]) {
        const n = b * 256 * 256;
        const raw = new Float32Array(n).map((_, i) => ((i * 7919) % 1000) / 1000);
        const up = new Float32Array(3 * n).map((_, i) => ((i * 104729) % 2000) / 1000 - 1);
        const times = [];
        for (let i = 0; i < 6; i++) {
          const start = performance.now();
          (await lab.runIspOn(raw, b, 256, 256, up, true)).free();
          if (i > 0) times.push((performance.now() - start) / 1000);
        }
        times.sort((x, y) => x - y);
        out[`${gpu ? 'webgpu' : 'wasm_cpu'}_b${b}_s`] = times[times.length >> 1];
      }
      out[gpu ? 'webgpu_adapter' : 'wasm_backend'] = lab.backend;
      return out;
    }, { gpu }));
  }
  console.log(`Parametrized ISP forward+backward, 256x256, batch norm (median; PyTorch CPU ${torch.torch_threads} threads, f32):`);
  for (const b of [1, 8]) {
    const t = torch[`torch_b${b}_s`];
    const rows = [
      ['PyTorch CPU', t],
      [`native CPU (candle, ${native.threads} threads)`, native[`cpu_b${b}_s`]],
      [`native GPU (${native.gpu ?? 'none'})`, native[`gpu_b${b}_s`]],
      ['browser CPU (wasm SIMD, 1 thread)', browser[`wasm_cpu_b${b}_s`]],
      [`browser GPU (${browser.webgpu_adapter})`, browser[`webgpu_b${b}_s`]],
    ];
    console.log(`  B=${b}`);
    for (const [name, s] of rows) {
      if (s === undefined) continue;
      console.log(`    ${name.padEnd(44)} ${(s * 1000).toFixed(1).padStart(8)} ms   ${(s / t).toFixed(2).padStart(6)}x PyTorch's time`);
    }
  }
};

// The convolutions' matrix products in the page's worker: the packed SIMD128 kernel the page uses
// against the `gemm` crate's wasm kernel, taking turns in the same worker (threaded and on one
// thread), at ResNet-18's 3x3 shapes at 256 px.
benches.matrix_products = async function matrixProducts() {
  const results = [];
  await inLabPage(async (page) => {
    for (const threads of [undefined, 1]) {
      const [ready, rows] = await inWorker(page, [['init', { preferGpu: false, threads }], ['benchMatrixProducts', { repeats: 7 }]]);
      results.push([ready.threads, rows]);
    }
  });
  for (const [threads, rows] of results) {
    console.log(`Matrix products of ResNet-18's 3x3 convolutions, 256 px, one band (median of 7), ${threads} thread${threads > 1 ? 's' : ''}:`);
    let [packed, crate] = [0, 0];
    for (const r of rows) {
      const gflops = (ms) => ((2 * r.m * r.n * r.k) / ms / 1e6).toFixed(1);
      console.log(`  ${r.product.padEnd(24)} ${`${r.m}x${r.n}x${r.k}`.padEnd(16)} packed ${r.packed_ms.toFixed(2).padStart(7)} ms (${gflops(r.packed_ms)} GFLOP/s)  gemm crate ${r.gemm_crate_ms.toFixed(2).padStart(7)} ms (${gflops(r.gemm_crate_ms)} GFLOP/s)  ${(r.gemm_crate_ms / r.packed_ms).toFixed(2)}x`);
      packed += r.packed_ms;
      crate += r.gemm_crate_ms;
    }
    console.log(`  all ${rows.length}: packed ${packed.toFixed(1)} ms, gemm crate ${crate.toFixed(1)} ms: ${(crate / packed).toFixed(2)}x faster`);
  }
};

// The train step at the datasets' size (256 px, batch 8): PyTorch, the native CLI's
// `bench train-step` and the page's worker (threaded and on one thread), same machine, same run.
// MODELS=a,b picks the models; FREEZE_BACKBONE=1 times fine-tuning's steps with the backbone
// frozen (its batch norms in evaluation mode, the head alone trained) on every side.
benches.train_step = async function trainStep() {
  const models = (process.env.MODELS ?? 'resnet18,unet_small,resnet_small').split(',');
  const frozenBackbone = process.env.FREEZE_BACKBONE === '1';
  const frozen = frozenBackbone ? ['--freeze-backbone'] : [];
  const [batch, size, steps] = [8, 256, 5];
  const lines = (cmd, args) => execFileSync(cmd, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    .trim().split('\n').map((l) => JSON.parse(l));
  const torch = Object.fromEntries(lines(python, ['tests/reference/train_step.py', '--batch', `${batch}`, '--size', `${size}`, '--steps', `${steps}`,
    ...frozen, ...models.flatMap((m) => ['--model', m])]).map((r) => [r.model, r]));
  const cli = join(root, 'target', 'release', 'lens2logit');
  const native = Object.fromEntries(models.map((m) => [m, lines(cli, ['bench', 'train-step', '--model', m, '--batch', `${batch}`, '--size', `${size}`, '--steps', `${steps}`, ...frozen])[0]]));
  const browser = {};
  await inLabPage(async (page) => {
    for (const threads of [undefined, 1]) {
      for (const model of models) {
        const [, r] = await inWorker(page, [['init', { preferGpu: false, threads }], ['benchTrainStep', { model, batch, size, steps, frozenBackbone }]]);
        (browser[model] ??= []).push(r);
      }
    }
  });
  console.log(`Train step${frozenBackbone ? ' with the backbone frozen' : ''}, batch ${batch}, ${size} px (median of ${steps}; ratio to PyTorch CPU on ${torch[models[0]].threads} threads):`);
  for (const m of models) {
    const t = torch[m].ms_per_step;
    const cell = (r) => `${r.ms_per_step.toFixed(0)} ms (${(r.ms_per_step / t).toFixed(2)}x)`;
    const pages = browser[m].map((r) => `browser ${r.threads} thread${r.threads > 1 ? 's' : ''} ${cell(r)}, wasm memory ${r.wasmMemoryMb.toFixed(0)} MB`).join('; ');
    console.log(`  ${m}: PyTorch ${t.toFixed(0)} ms; native ${native[m].threads} threads ${cell(native[m])}, peak RSS ${native[m].peak_rss_mb} MB; ${pages}`);
  }
};

// The GPU backend's train step beside the CPU backend's, natively (whatever adapter wgpu finds:
// lavapipe here) and in the page (WebGPU: SwiftShader headless), with the device work per step.
// Software adapters are far slower than the CPU: these figures show the GPU path end to end,
// its submissions and readbacks; timings mean something on a hardware GPU only.
benches.train_step_gpu = async function trainStepGpu() {
  const models = (process.env.MODELS ?? 'resnet_small,unet_small').split(',');
  const [batch, size, steps] = [8, Number(process.env.SIZE ?? 64), 3];
  const cli = join(root, 'target', 'release', 'lens2logit');
  const run = (model, backend) => JSON.parse(execFileSync(cli, ['bench', 'train-step', '--model', model, '--batch', `${batch}`,
    '--size', `${size}`, '--steps', `${steps}`, '--backend', backend], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  const rows = [];
  for (const model of models) rows.push(['native', run(model, 'cpu')], ['native', run(model, 'gpu')]);
  await inLabPage(async (page) => {
    for (const model of models) {
      for (const gpu of [false, true]) {
        const [, r] = await inWorker(page, [['init', { preferGpu: true }], ['benchTrainStep', { model, batch, size, steps, gpu }]]);
        rows.push(['browser', r]);
      }
    }
  });
  console.log(`Train step on each backend, batch ${batch}, ${size} px (median of ${steps}):`);
  for (const [where, r] of rows) {
    const traffic = r.submissions_per_step === undefined ? '' : `, ${r.submissions_per_step} submissions and ${r.readbacks_per_step} readbacks per step`;
    console.log(`  ${r.model.padEnd(13)} ${where.padEnd(8)} ${r.backend} on ${r.device}: ${r.ms_per_step.toFixed(0)} ms${traffic}`);
  }
};

// The rate a page session shows, beside the bare step: a ResNet-18 synthesis session on 64
// synthetic 256 px tiles, batch 8, 32 steps on the CPU, with the page's default gradient
// snapshots, run through the lab's worker as the page runs it. Per training step: the rate its
// progress line shows (tiles/s of that step), and the wall-clock rate from the job's start to
// the last training step (rendering, snapshots and the worker's messages included); PyTorch's
// step on the same machine in the same run. STEPS= and MODEL= change the session.
benches.session_rate = async function sessionRate() {
  const [model, batch, size, steps] = [process.env.MODEL ?? 'resnet18', 8, 256, Number(process.env.STEPS ?? 32)];
  const torch = json(python, ['tests/reference/train_step.py', '--batch', `${batch}`, '--size', `${size}`, '--steps', '5', '--model', model]);
  const options = { mode: 'synthesis', model, steps, lr: 1e-3, batch, seed: 1, intensities: [100] };
  const { results: [ready], started, events } = await inLabPage((page) => inWorker(page, [
    ['init', { preferGpu: false }],
    ['loadSynthetic', { task: 'classification', n: 64, seed: 1, size }],
    ['runJob', { options }],
  ], { timed: true }));
  const training = events.filter((e) => e.channel === 'job' && e.data.kind === 'step' && !e.data.report.evaluating);
  const session = {
    threads: ready.threads,
    shown: training.map((e) => e.data.report.samples_per_s),
    stepMs: training.map((e) => e.data.report.step_ms),
    // from runJob's start
    wallS: (training.at(-1).at - started[2]) / 1000,
  };
  const ms = session.stepMs.reduce((a, b) => a + b, 0);
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const pytorch = 1000 * batch / torch.ms_per_step;
  const row = (name, rate) => console.log(`  ${name.padEnd(58)} ${rate.toFixed(2).padStart(6)} tiles/s   ${(pytorch / rate).toFixed(2).padStart(6)}x PyTorch's time`);
  console.log(`${model} synthesis session, batch ${batch}, ${size} px, ${steps} steps, page CPU on ${session.threads} threads (PyTorch: ${torch.ms_per_step.toFixed(0)} ms a step, ${torch.threads} threads):`);
  row('PyTorch step', pytorch);
  row('page: median of the rates the progress line showed', median(session.shown));
  row('page: the steps alone (tiles over the steps\' summed time)', 1000 * batch * steps / ms);
  row('page: wall clock from the job\'s start to the last step', batch * steps / session.wallS);
  console.log(`  shown per step: ${session.shown.map((r) => r.toFixed(2)).join(' ')}`);
};

// Where the page's train step spends its time: V8's sampling profiler in the lab's worker and in
// each of its rayon workers (DevTools protocol over the browser's debugging port), self time per
// function summed over the workers, for ResNet-18 at 256 px, batch 8 (MODEL= picks another). Wasm
// functions have their Rust names in modules built with LENS2LOGIT_BENCH=1. Node's WebSocket:
// `node --experimental-websocket tests/bench/run.mjs page_profile` on Node 20.
benches.page_profile = async function pageProfile() {
  if (typeof WebSocket === 'undefined') throw new Error('page_profile needs WebSocket: run node with --experimental-websocket');
  const [model, batch, size, steps] = [process.env.MODEL ?? 'resnet18', 8, 256, 3];
  const port = 9339;
  const server = await startServer();
  const browser = await launch({ webgpu: false, extraArgs: [`--remote-debugging-port=${port}`] });
  try {
    const page = await browser.newPage();
    await page.goto(`${server.url}?backend=cpu`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 });
    const { webSocketDebuggerUrl } = await (await fetch(`http://127.0.0.1:${port}/json/version`)).json();
    const cdp = new WebSocket(webSocketDebuggerUrl);
    await new Promise((resolve, reject) => { cdp.onopen = resolve; cdp.onerror = reject; });
    let next = 0;
    const pending = new Map();
    const workers = new Set();
    const send = (method, params = {}, sessionId) => new Promise((resolve, reject) => {
      const id = ++next;
      pending.set(id, { resolve, reject });
      setTimeout(() => pending.delete(id) && reject(new Error(`${method}: no answer`)), 60_000);
      cdp.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
    const follow = (sessionId) => send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: true }, sessionId);
    cdp.onmessage = ({ data }) => {
      const msg = JSON.parse(data);
      if (msg.id && pending.has(msg.id)) {
        const { resolve, reject } = pending.get(msg.id);
        pending.delete(msg.id);
        if (msg.error) reject(new Error(JSON.stringify(msg.error))); else resolve(msg.result);
      } else if (msg.method === 'Target.attachedToTarget' && msg.params.targetInfo.type === 'worker') {
        const session = msg.params.sessionId;
        workers.add(session);
        follow(session).catch(() => {});
        send('Profiler.enable', {}, session)
          .then(() => send('Profiler.setSamplingInterval', { interval: 500 }, session))
          .then(() => send('Profiler.start', {}, session)).catch(() => {});
      }
    };
    console.error('page_profile: attaching to the page');
    const { targetInfos } = await send('Target.getTargets');
    const target = targetInfos.find((t) => t.type === 'page' && t.url.startsWith(server.url));
    const { sessionId } = await send('Target.attachToTarget', { targetId: target.targetId, flatten: true });
    await follow(sessionId);
    console.error('page_profile: running the train step');
    // the worker stays alive until its profile is taken
    const calls = [['init', { preferGpu: false }], ['benchTrainStep', { model, batch, size, steps }]];
    const [ready, r] = await inWorker(page, calls, { keep: true });
    console.error(`page_profile: collecting the profiles of ${workers.size} workers`);
    const self = new Map();
    let total = 0;
    for (const session of workers) {
      let profile;
      try { ({ profile } = await send('Profiler.stop', {}, session)); } catch { continue; }
      const byId = new Map(profile.nodes.map((n) => [n.id, n]));
      const dt = new Map();
      profile.samples.forEach((id, i) => dt.set(id, (dt.get(id) ?? 0) + profile.timeDeltas[i]));
      for (const [id, us] of dt) {
        const name = byId.get(id).callFrame.functionName || '(anonymous)';
        // a rayon worker with nothing to do blocks in Atomics.wait under the condvar: idle too
        if (name === '(idle)' || name === '(program)' || name.endsWith('Condvar>::wait')) continue;
        self.set(name, (self.get(name) ?? 0) + us);
        total += us;
      }
    }
    cdp.close();
    console.log(`${model}, batch ${batch}, ${size} px on ${ready.threads} threads: ${r.ms_per_step.toFixed(0)} ms a step; busy time by function over ${workers.size} workers (self time; idle and waiting left out):`);
    for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 40))) {
      console.log(`  ${(100 * us / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${name.slice(0, 150)}`);
    }
  } finally {
    await browser.close();
    server.stop();
  }
};

const wanted = process.argv.slice(2);
for (const name of wanted.length ? wanted : Object.keys(benches)) {
  if (!benches[name]) throw new Error(`unknown benchmark '${name}': ${Object.keys(benches).join(', ')}`);
  await benches[name]();
}
