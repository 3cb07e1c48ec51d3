// Compute worker: loads the wasm module and forwards the page's requests to the Rust facade.

import init, { Lab } from './pkg/lens2logit.js';

let lab = null;

function postImage(target, image) {
  const { width, height } = image;
  const rgba = image.takeRgba();
  image.free();
  postMessage({ type: 'image', target, width, height, rgba }, [rgba.buffer]);
}

const handlers = {
  async init({ preferGpu, chartSize }) {
    await init();
    lab = await Lab.create(preferGpu);
    postMessage({ type: 'ready', backend: lab.backend, gpu: lab.isGpu });
    lab.setCamera('drone');
    lab.loadChart(chartSize);
    postImage('mosaic', lab.mosaic());
    const names = Lab.viewNames();
    lab.renderViews().forEach((image, i) => postImage(`view:${names[i]}`, image));
  },
};

self.onmessage = async ({ data }) => {
  try {
    await handlers[data.type](data);
  } catch (error) {
    postMessage({ type: 'error', message: error instanceof Error ? error.message : String(error) });
  }
};
