#!/usr/bin/env bash
# Builds the lab as a static site in dist/: upload that folder to any static host (GitHub Pages,
# an S3 bucket, a university web folder, `python3 -m http.server`). It holds the page, its worker,
# both wasm modules with precompressed copies, the vendored JS, sw.js (which makes the page
# cross-origin isolated, so threaded, on hosts that cannot send headers) and a `_headers` file
# for hosts that read one (Netlify, Cloudflare Pages) with the same headers.
source "$(dirname "$0")/common.sh"

ensure_apt brotli
ensure_wasm_target
ensure_nightly
ensure_wasm_bindgen
build_page
build_site
