// Cross-origin isolation on hosts that cannot send headers (GitHub Pages, a bucket, a university
// folder, `python3 -m http.server`): this service worker answers the lab's own requests with the
// headers `lens2logit serve` sends (COOP/COEP, so the page may share memory with its thread pool;
// and the page's Content-Security-Policy from csp.txt, so the workers and modules run under it
// too). coi.js registers it and reloads the page once. Other origins (Zenodo) pass untouched.

const csp = fetch(new URL('./csp.txt', self.location)).then((r) => r.text()).then((t) => t.trim());

/** The origin of an http(s) URL, else null. */
function httpOrigin(value) {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : null;
  } catch {
    return null;
  }
}

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (new URL(request.url).origin !== self.location.origin) return;
  if (request.cache === 'only-if-cached' && request.mode !== 'same-origin') return;
  event.respondWith(Promise.all([fetch(request), csp]).then(([response, policy]) => {
    if (response.status === 0) return response;
    // as `lens2logit serve` does: a worker asked for with ?connect=ORIGIN (the Zenodo mirror and
    // the MLflow server the user set) may also connect there
    const origins = new URL(request.url).searchParams.getAll('connect').map(httpOrigin).filter(Boolean).slice(0, 4);
    if (origins.length) policy = policy.replace('connect-src', `connect-src ${origins.join(' ')}`);
    const headers = new Headers(response.headers);
    headers.set('Cross-Origin-Opener-Policy', 'same-origin');
    headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
    headers.set('Cross-Origin-Resource-Policy', 'same-origin');
    headers.set('Content-Security-Policy', policy);
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  }));
});
