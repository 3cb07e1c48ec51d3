// Images: the core's RGBA images onto canvases, captioned figures, the zoom dialog (which also
// exports the charts as PNG) and downloads.

import { $ } from './dom.js';

export function draw(canvas, { width, height, rgba }) {
  canvas.width = width;
  canvas.height = height;
  canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(rgba), width, height), 0, 0);
}

export function download(name, data, type) {
  const link = document.createElement('a');
  link.href = URL.createObjectURL(data instanceof Blob ? data : new Blob([data], { type }));
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

const zoom = { source: null };
function openZoom(title, canvas) {
  $('zoom-title').textContent = title;
  const big = $('zoom-canvas');
  big.width = canvas.width;
  big.height = canvas.height;
  big.getContext('2d').drawImage(canvas, 0, 0);
  zoom.title = title;
  $('zoom').showModal();
}

/** The zoom dialog's buttons, and the charts' export buttons that open it. */
export function wireImages() {
  $('zoom-close').onclick = () => $('zoom').close();
  // charts export through the same dialog: uPlot draws into a canvas
  for (const button of document.querySelectorAll('[data-chart]')) {
    button.onclick = () => {
      const canvas = $(button.dataset.chart).querySelector('canvas');
      if (canvas) openZoom(button.dataset.chart, canvas);
    };
  }
  $('zoom-png').onclick = () => $('zoom-canvas').toBlob((blob) => download(`${zoom.title.replace(/[^\w.-]+/g, '_')}.png`, blob));
}

/** A captioned canvas that opens enlarged on click (and Enter). */
export function figure(parent, caption, image, label = caption) {
  const fig = document.createElement('figure');
  const canvas = document.createElement('canvas');
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', label);
  canvas.tabIndex = 0;
  draw(canvas, image);
  canvas.onclick = () => openZoom(caption, canvas);
  canvas.onkeydown = (e) => { if (e.key === 'Enter') openZoom(caption, canvas); };
  const cap = document.createElement('figcaption');
  cap.textContent = caption;
  fig.append(canvas, cap);
  parent.append(fig);
  return fig;
}
