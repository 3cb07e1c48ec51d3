#!/usr/bin/env bash
# Runs every test: native (cargo), browser (wasm-bindgen-test in headless Chromium with WebGPU)
# and page tests (Playwright driving Chromium against `lens2logit serve`), then a summary.
source "$(dirname "$0")/common.sh"

ensure_apt chromium chromium-driver mesa-vulkan-drivers libvulkan1 brotli sqlite3
ensure_wasm_target
ensure_nightly
ensure_wasm_bindgen
ensure_npm_packages
ensure_python_references
write_pretrained_references
write_isp_numerics_reference
find_demo_data

# lavapipe is the native GPU adapter here: without one the GPU tests fail (never skip).
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
export CHROMEDRIVER=/usr/bin/chromedriver
export WASM_BINDGEN_TEST_TIMEOUT=900

results=()
failed=0
step() {
  local name="$1"; shift
  say "$name"
  local start=$SECONDS
  if "$@"; then
    results+=("PASS  $name ($((SECONDS - start)) s)")
  else
    results+=("FAIL  $name ($((SECONDS - start)) s)")
    failed=1
  fi
}

step "native tests (cargo test --release --workspace)" cargo test --release --workspace
step "browser tests (wasm-bindgen-test, headless Chromium)" \
  cargo test --release --target wasm32-unknown-unknown --test browser
step "page build" build_page
step "CLI build" build_cli
step "static site build (dist/)" build_site
step "page tests (Playwright)" npm test --prefix tests/e2e

echo
say "summary"
printf '  %s\n' "${results[@]}"
[ -d target/e2e ] && echo "  screenshots: target/e2e/"
exit $failed
