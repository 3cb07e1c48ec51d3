// Errors and status: the banner every failure reaches, the status line, and `guard`, which runs
// a UI action and sends its failure to the banner.

import { $ } from './dom.js';

export function showError(message) {
  $('error-text').textContent = message;
  $('error').hidden = false;
  setStatus('');
}

export const setStatus = (text) => { $('status').textContent = text; };

/** Runs an async UI action; any failure goes to the banner. */
export const guard = (fn) => async (...args) => {
  try {
    await fn(...args);
  } catch (error) {
    showError(error.message ?? String(error));
  }
};

/** The banner's close button; a promise rejected with no handler reaches the banner too. */
export function wireStatus() {
  $('error-close').onclick = () => { $('error').hidden = true; };
  window.addEventListener('unhandledrejection', (event) => showError(String(event.reason?.message ?? event.reason)));
}
