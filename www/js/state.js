// The page's state: what lives in the URL (a copied link restores it), the controls' settings
// from the core, and the mutable state the panels share (the core's views and ISP parameters,
// the current fine-tuning session).

import { $ } from './dom.js';

export const STATE = ['source', 'task', 'n', 'size', 'seed', 'dataset', 'zenodo-task', 'intensity', 'limit', 'zenodo', 'record',
  'debayer', 'sharpening', 'denoising', 'mode', 'model', 'steps', 'lr', 'batch', 'device', 'lambda', 'attack-steps', 'group', 'corruption',
  'freeze-backbone', 'backbone-lr', 'weights-url', 'train-view', 'mlflow', 'mlflow-experiment', 'fit-steps'];

/** The controls' bounds, defaults and choices, from the core's description of every setting. */
export function applySettings(settings) {
  for (const s of settings) {
    const el = $(s.id);
    if (!el) continue;
    const { range } = s;
    if (el instanceof HTMLSelectElement) {
      const unset = s.default === null ? [new Option(s.unset, '')] : [];
      el.replaceChildren(...unset, ...choices(range).map((v) => new Option(v, v)));
    } else {
      Object.assign(el, { min: range.min, max: range.max, step: range.type === 'whole' ? 1 : range.step });
    }
    el.value = s.default ?? '';
  }
}

/** A setting's values, for a list to choose from. */
const choices = (range) => (range.type === 'whole'
  ? Array.from({ length: range.max - range.min + 1 }, (_, i) => String(range.min + i))
  : range.values.map(String));

/** The URL the page was opened with. */
export const url = new URLSearchParams(location.search);

/** The URL state that is no control: the selected tile, the edited ISP parameters. */
export const values = { tile: Number(url.get('tile') ?? 0), params: url.get('params') };

export function restoreControls() {
  for (const key of STATE) if (url.has(key) && $(key)) $(key).value = url.get(key);
}

export function saveState() {
  const next = new URLSearchParams();
  for (const key of STATE) if ($(key)) next.set(key, $(key).value);
  next.set('tile', values.tile);
  if (values.params) next.set('params', values.params);
  if (url.get('backend')) next.set('backend', url.get('backend'));
  if (url.get('threads')) next.set('threads', url.get('threads'));
  history.replaceState(null, '', `?${next}`);
}

/** The static view the controls choose (demosaicing-sharpening-denoising). */
export const currentView = () => `${$('debayer').value}-${$('sharpening').value}-${$('denoising').value}`;

/**
 * What the core said when it started: its static views' names and the ISP's parameter specs;
 * and the ISP parameters' current values (the parametrized processing panel edits them).
 */
export const lab = { views: [], paramSpecs: [], paramValues: [] };

/** The current fine-tuning session: its curves by phase, gradient snapshots, summary. */
export const session = { curves: {}, snapshots: [], playing: null, summary: null, started: 0 };
