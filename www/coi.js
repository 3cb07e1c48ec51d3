// Makes the page cross-origin isolated where the host does not: registers sw.js, which adds the
// headers to every response of this origin, and reloads the page once so that it loads under
// them. Served by `lens2logit serve` the page is isolated already and nothing happens; where no
// service worker can help (blocked, or a browser without them) the page runs on one thread.

const RELOADED = 'lens2logit-coi-reload';

export async function isolate() {
  if (crossOriginIsolated || !isSecureContext || !('serviceWorker' in navigator)) return;
  let registration;
  try {
    registration = await navigator.serviceWorker.register(new URL('./sw.js', import.meta.url));
  } catch {
    return; // service workers refused here (a policy, a private window): one thread it is
  }
  // already controlled but not isolated: this browser does not honour the headers
  if (!registration || navigator.serviceWorker.controller || sessionStorage.getItem(RELOADED)) return;
  sessionStorage.setItem(RELOADED, '1');
  // the worker activates within moments; where it never does, this load goes on unisolated
  const timeout = new Promise((resolve) => { setTimeout(() => resolve(false), 10_000); });
  if (!(await Promise.race([navigator.serviceWorker.ready.then(() => true), timeout]))) return;
  location.reload();
  await new Promise(() => {}); // nothing more runs on this load
}
