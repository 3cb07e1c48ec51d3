// UI thread: renders what the worker computes. No computation here.

const $ = (id) => document.getElementById(id);

function showError(message) {
  const banner = $('error');
  banner.textContent = message;
  banner.hidden = false;
}

// A canvas per static view, made on first use, captioned with the view's name.
function viewCanvas(name) {
  const id = `view-${name}`;
  if (!$(id)) {
    const figure = document.createElement('figure');
    const canvas = document.createElement('canvas');
    canvas.id = id;
    canvas.setAttribute('aria-label', `view ${name}`);
    const caption = document.createElement('figcaption');
    caption.textContent = name.replaceAll('-', ' \u00b7 ');
    figure.append(canvas, caption);
    $('views').append(figure);
  }
  return id;
}

function drawImage(canvasId, { width, height, rgba }) {
  const canvas = $(canvasId);
  canvas.width = width;
  canvas.height = height;
  canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(rgba), width, height), 0, 0);
}

const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
worker.onerror = (event) => showError(`The compute worker failed to start: ${event.message || 'unknown error'}`);
worker.onmessage = ({ data }) => {
  switch (data.type) {
    case 'ready':
      $('backend').textContent = data.backend;
      document.body.dataset.backend = data.gpu ? 'gpu' : 'cpu';
      break;
    case 'image':
      if (data.target.startsWith('view:')) {
        drawImage(viewCanvas(data.target.slice(5)), data);
        document.body.dataset.views = String($('views').children.length);
      } else {
        drawImage(data.target, data);
        document.body.dataset.ready = 'true';
      }
      break;
    case 'error':
      showError(data.message);
      break;
  }
};
window.addEventListener('unhandledrejection', (event) => showError(String(event.reason)));

const params = new URLSearchParams(location.search);
worker.postMessage({
  type: 'init',
  preferGpu: params.get('backend') !== 'cpu',
  chartSize: Number(params.get('chart') ?? 256),
});
