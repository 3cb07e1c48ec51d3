// Benchmarks (never a timed test): each runs the reference and ours in the same session and prints
// the ratios. `node tests/bench/run.mjs [static_views]` after scripts/serve.sh has built pkg/ and
// the CLI. Figures depend on the machine: compare ratios, not seconds.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch, root, startServer } from '../e2e/harness.mjs';

const demo = process.env.LENS2LOGIT_DEMO_DATA || join(root, '..', 'shared', 'data', 'raw2logit-demo');

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

const benches = {
  async static_views() {
    const repeats = 20;
    const python = json('python3', ['tests/reference/static_views.py', '--bench', String(repeats)]);
    const native = json('cargo', ['bench', '--quiet', '--bench', 'static_views', '--', join(demo, 'micro.png'), '50']);
    const tile = [...readFileSync(join(demo, 'micro.png'))];
    const browser = await inBrowser(async ({ tile, repeats }) => {
      const wasm = await import('/pkg/lens2logit.js');
      await wasm.default();
      const lab = await wasm.Lab.create(false);
      lab.setCamera('microscopy');
      await lab.loadFile('micro.png', new Uint8Array(tile));
      lab.renderViews();
      const times = [];
      for (let i = 0; i < repeats; i++) {
        const start = performance.now();
        lab.renderViews();
        times.push((performance.now() - start) / 1000);
      }
      times.sort((a, b) => a - b);
      return { browser_all_12_views_s: times[repeats >> 1] };
    }, { tile, repeats });
    const p = python.python_all_12_views_s;
    const rows = [
      ['Python (numpy, scipy, colour-demosaicing)', p],
      [`native (${native.threads} threads)`, native.native_all_12_views_s],
      ['browser (wasm SIMD, 1 thread, incl. RGBA)', browser.browser_all_12_views_s],
    ];
    console.log('All 12 static views of one 256x256 tile (median):');
    for (const [name, s] of rows) {
      console.log(`  ${name.padEnd(44)} ${(s * 1000).toFixed(2).padStart(8)} ms   ${(p / s).toFixed(1).padStart(6)}x`);
    }
  },
};

benches.param_isp = async function paramIsp() {
  const torch = json('python3', ['tests/reference/param_isp.py', '--bench', '10']);
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

benches.train_step = async function trainStep() {
  const torch = json('python3', ['tests/reference/train_step.py', '--repeats', '10']);
  const native = json('cargo', ['bench', '--quiet', '--bench', 'train_step', '--', '10']);
  const browser = await inBrowser(async () => {
    const wasm = await import('/pkg/lens2logit.js');
    await wasm.default();
    const lab = await wasm.Lab.create(false);
    const step = async (task, model, size, steps) => {
      lab.loadSynthetic(task, 32, 0, size);
      const trainer = new wasm.Trainer(lab, { mode: 'synthesis', model, steps, lr: 0.001, batch: 8, seed: 0, snapshotEvery: 0, intensities: [100] });
      const times = [];
      await trainer.run(new wasm.TrainControl(), (r) => times.push(r.step_ms / 1000));
      const warm = times.slice(8).sort((a, b) => a - b);
      return warm[warm.length >> 1];
    };
    return {
      resnet_small_b8_64_s: await step('classification', 'resnet_small', 64, 16),
      unet_small_b8_64_s: await step('segmentation', 'unet_small', 64, 16),
      resnet18_b8_128_s: await step('classification', 'resnet18', 128, 11),
    };
  });
  console.log(`Train step, batch 8 (median; PyTorch CPU ${torch.torch_threads} threads):`);
  for (const [key, name] of [['resnet_small_b8_64_s', 'small ResNet, 64 px'], ['unet_small_b8_64_s', 'small U-Net, 64 px'], ['resnet18_b8_128_s', 'ResNet-18, 128 px']]) {
    const t = torch[key];
    console.log(`  ${name}: PyTorch ${(t * 1000).toFixed(1)} ms; native ${(native[key] * 1000).toFixed(1)} ms (${(native[key] / t).toFixed(2)}x); browser ${(browser[key] * 1000).toFixed(1)} ms (${(browser[key] / t).toFixed(2)}x)`);
  }
  const c = torch.cnn_3_16_32_64_fwd_bwd_s;
  console.log(`3-16-32-64 CNN, 1x3x256x256, forward + backward: PyTorch ${(c * 1000).toFixed(1)} ms; candle conv2d ${(native.cnn_candle_conv_s * 1000).toFixed(1)} ms (${(native.cnn_candle_conv_s / c).toFixed(2)}x); im2col + GEMM ops ${(native.cnn_ours_s * 1000).toFixed(1)} ms (${(native.cnn_ours_s / c).toFixed(2)}x)`);
};

const wanted = process.argv.slice(2);
for (const name of wanted.length ? wanted : Object.keys(benches)) {
  if (!benches[name]) throw new Error(`unknown benchmark '${name}': ${Object.keys(benches).join(', ')}`);
  await benches[name]();
}
