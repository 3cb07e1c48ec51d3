# Shared by serve.sh and test.sh: install what is missing (and only that), build the page.
# Sourced, not run. Every step says what it does; a second run finds everything in place.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages, installed only when one of them is missing.
ensure_apt() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} (apt)"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

ensure_wasm_target() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown Rust target"
    rustup target add wasm32-unknown-unknown
  fi
}

# wasm-bindgen-cli must be exactly the wasm-bindgen version in Cargo.lock.
ensure_wasm_bindgen() {
  local want have
  want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
  have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
  if [ "$have" != "$want" ]; then
    say "installing wasm-bindgen-cli $want (a few minutes, once)"
    cargo install wasm-bindgen-cli --version "$want"
  fi
}

ensure_npm_packages() {
  if [ ! -d tests/e2e/node_modules/playwright-core ] ||
     [ tests/e2e/package-lock.json -nt tests/e2e/node_modules/.package-lock.json ]; then
    say "installing the page tests' npm packages (from the lock file)"
    npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error
  fi
}

# The two real demo tiles live beside the checkout in ../shared (never copied in). A clone made
# elsewhere (CI) finds them beside the repository it was cloned from.
find_demo_data() {
  [ -n "${LENS2LOGIT_DEMO_DATA:-}" ] && return
  local origin candidate
  origin="$(git -C "$ROOT" config --get remote.origin.url 2>/dev/null || true)"
  for candidate in "$ROOT/../shared/data/raw2logit-demo" "$origin/../shared/data/raw2logit-demo"; do
    if [ -f "$candidate/micro.png" ]; then
      export LENS2LOGIT_DEMO_DATA="$(cd "$candidate" && pwd)"
      return
    fi
  done
  say "warning: demo tiles (../shared/data/raw2logit-demo) not found; set LENS2LOGIT_DEMO_DATA"
}

# The page's wasm module (release, simd128) and its JS glue in pkg/.
build_page() {
  say "building the page's wasm module"
  cargo build --lib --target wasm32-unknown-unknown --profile wasm-release
  wasm-bindgen --target web --no-typescript --out-dir pkg \
    target/wasm32-unknown-unknown/wasm-release/lens2logit.wasm
}

build_cli() {
  say "building the native CLI"
  cargo build --release --bin lens2logit --examples
}
