// The data panel's tile browser: a thumbnail per loaded tile (in the chosen static view), its
// label, and its mask overlaid when asked; a click selects the tile.

import { $ } from './dom.js';
import { draw } from './images.js';
import { selectTile } from './static-pipeline.js';
import { currentView } from './state.js';
import { guard, showError } from './status.js';
import { call } from './worker-client.js';

export function addTile(index, name, label) {
  const button = document.createElement('button');
  button.className = 'tile';
  button.type = 'button';
  button.setAttribute('role', 'listitem');
  button.setAttribute('aria-label', `tile ${index + 1}: ${name}${label ? `, ${label}` : ''}`);
  const canvas = document.createElement('canvas');
  button.append(canvas);
  if (label) {
    const badge = document.createElement('span');
    badge.className = 'badge';
    badge.textContent = label;
    button.append(badge);
  }
  button.onclick = guard(() => selectTile(index));
  $('tiles').append(button);
  thumbnail(index, canvas);
}

export async function thumbnail(index, canvas) {
  try {
    draw(canvas, await call('thumbnail', { index, view: currentView() }));
    if ($('show-masks').checked) {
      const info = await call('tileInfo', { index });
      if (info.hasMask) {
        const overlay = await call('maskOverlay', { index });
        const bitmap = await createImageBitmap(new ImageData(new Uint8ClampedArray(overlay.rgba), overlay.width, overlay.height));
        canvas.getContext('2d').drawImage(bitmap, 0, 0);
      }
    }
  } catch (error) {
    // a tile discarded while its thumbnail was on the way is no error of its own
    if (canvas.isConnected) showError(error.message);
  }
}

export async function renderTiles(count) {
  $('tiles').replaceChildren();
  $('tile-count').textContent = `${count} tiles`;
  for (let i = 0; i < count; i++) {
    const info = await call('tileInfo', { index: i });
    addTile(i, info.name, info.class);
  }
}

export function wireTiles() {
  $('show-masks').onchange = guard(async () => renderTiles($('tiles').children.length));
}
