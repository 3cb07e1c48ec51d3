#!/usr/bin/env bash
# Runs every test: native (cargo), browser (wasm-bindgen-test in headless Chromium with WebGPU)
# and page tests (Playwright driving Chromium against `lens2logit serve`), then a summary.
#
# Two streams share the machine's cores, since no suite keeps both busy on its own: the Rust
# stream compiles and runs the native tests, then the browser tests; the page stream builds the
# page's modules beside that compilation, then runs the page tests beside the Rust stream's runs
# (once the CLI, which serves the page, is built). Each line says which stream printed it.
source "$(dirname "$0")/common.sh"

ensure_apt chromium chromium-driver mesa-vulkan-drivers libvulkan1 brotli sqlite3
ensure_wasm_target
ensure_nightly
ensure_wasm_bindgen
ensure_npm_packages
ensure_python_references
write_pretrained_references
find_demo_data

# lavapipe is the native GPU adapter here: without one the GPU tests fail (never skip).
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
export CHROMEDRIVER=/usr/bin/chromedriver
export WASM_BINDGEN_TEST_TIMEOUT=900

state="$(mktemp -d)"
trap 'rm -rf "$state"' EXIT

# step NAME COMMAND...: runs it, records "PASS/FAIL  NAME (seconds)"; its status is the command's.
step() {
  local name="$1"; shift
  say "$name"
  local start=$SECONDS status=0
  "$@" || status=$?
  local verdict=PASS
  [ "$status" = 0 ] || verdict=FAIL
  echo "$verdict  $name ($((SECONDS - start)) s)" >> "$state/results"
  return "$status"
}

# The native tests compile (with the CLI and its examples, which the page tests start), then run;
# then the browser tests. `cli-built` tells the page stream the CLI is there (or never will be).
# A failed step does not stop the next: the summary says which failed.
rust_stream() {
  step "native tests: compile (cargo test --release --workspace --no-run)" \
    cargo test --release --workspace --no-run &&
    step "CLI build" build_cli || true
  touch "$state/cli-built"
  step "native tests (cargo test --release --workspace)" cargo test --release --workspace || true
  step "browser tests (wasm-bindgen-test, headless Chromium)" \
    cargo test --release --target wasm32-unknown-unknown --test browser || true
}

page_stream() {
  step "page build" build_page && step "static site build (dist/)" build_site || return 0
  until [ -e "$state/cli-built" ]; do sleep 2; done
  step "page tests (Playwright)" npm test --prefix tests/e2e || true
}

# each stream's lines prefixed with its name, as they come
rust_stream 2>&1 | sed -u 's/^/[rust] /' &
rust=$!
page_stream 2>&1 | sed -u 's/^/[page] /'
wait "$rust" || true

echo
say "summary"
sed 's/^/  /' "$state/results"
[ -d target/e2e ] && echo "  screenshots: target/e2e/"
# every step ran and passed
[ "$(grep -c '^PASS' "$state/results")" = 7 ]
