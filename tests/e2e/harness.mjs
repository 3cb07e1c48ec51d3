// Shared by the page tests: start `lens2logit serve`, launch Debian's Chromium, collect console
// errors, save screenshots under target/e2e/ for people to look at.

import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const screenshots = join(root, 'target', 'e2e');
mkdirSync(screenshots, { recursive: true });

// Chromium must not reach the internet (there is none here) and must offer WebGPU when asked.
const quiet = ['--no-first-run', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--disable-quic'];

/** Starts the release CLI on a free port; resolves to { url, stop }. */
export function startServer(extraArgs = []) {
  const bin = join(root, 'target', 'release', 'lens2logit');
  const child = spawn(bin, ['serve', '--port', '0', ...extraArgs], { cwd: root });
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('exit', (code) => reject(new Error(`lens2logit serve exited (${code}): ${stderr}`)));
    child.stdout.on('data', (chunk) => {
      const match = /http:\/\/\S+/.exec(String(chunk));
      if (match) resolve({ url: match[0], stop: () => child.kill() });
    });
  });
}

/** Launches Chromium headless; `webgpu: false` leaves out --enable-unsafe-webgpu. */
export async function launch({ webgpu = true } = {}) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [...quiet, ...(webgpu ? ['--enable-unsafe-webgpu'] : [])],
  });
}

/** Opens a page that records console errors and uncaught exceptions in `page.errors`. */
export async function openPage(browser, url) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.errors = [];
  page.on('console', (msg) => { if (msg.type() === 'error') page.errors.push(msg.text()); });
  page.on('pageerror', (err) => page.errors.push(String(err)));
  await page.goto(url);
  return page;
}

export const shot = (page, name) => page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });
