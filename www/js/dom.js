// The page's elements by id: the one DOM helper every panel uses.

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/** Makes `zone` take dropped files: `take(files)` gets them (the zone shows a drag over it). */
export function dropZone(zone, take) {
  zone.ondragover = (e) => { e.preventDefault(); zone.classList.add('over'); };
  zone.ondragleave = () => zone.classList.remove('over');
  zone.ondrop = (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    return take([...e.dataTransfer.files]);
  };
}

/**
 * Marks each sideways-scrolling box (`.scroll`) whose content is wider than it with
 * `data-overflows="true"`, for the stylesheet's hint; boxes added later and tables that grow are
 * followed.
 */
export function markOverflowingBoxes() {
  const mark = (box) => { box.dataset.overflows = String(box.scrollWidth > box.clientWidth + 1); };
  const sizes = new ResizeObserver((entries) => entries.forEach((e) => mark(e.target.closest('.scroll'))));
  const follow = (box) => {
    if (box.dataset.overflows !== undefined) return;
    mark(box);
    sizes.observe(box);
    if (box.firstElementChild) sizes.observe(box.firstElementChild);
  };
  document.querySelectorAll('.scroll').forEach(follow);
  new MutationObserver(() => document.querySelectorAll('.scroll').forEach((box) => {
    follow(box);
    mark(box);
  })).observe(document.body, { childList: true, subtree: true });
}
