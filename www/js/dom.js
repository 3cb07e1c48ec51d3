// The page's elements by id: the one DOM helper every panel uses.

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

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
