# Shared by serve.sh and test.sh: install what is missing (and only that), build the page.
# Sourced, not run. Every step says what it does; a second run finds everything in place.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# What the script does next, after how many seconds (the first run's costs, step by step).
say() { printf '\033[1m==> [%d s] %s\033[0m\n' "$SECONDS" "$*" >&2; }

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
    # a tool run once per build on one module: opt-level 1 without LTO compiles with less work and
    # still binds a module in seconds; without default features it has no TLS stack (rustls, ring's
    # C), which its test runner does not need to drive a local ChromeDriver over http
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_LTO=false \
      CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 cargo install wasm-bindgen-cli --version "$want" \
      --no-default-features
  fi
}

ensure_npm_packages() {
  if [ ! -d tests/e2e/node_modules/playwright-core ] ||
     [ tests/e2e/package-lock.json -nt tests/e2e/node_modules/.package-lock.json ]; then
    say "installing the page tests' npm packages (from the lock file)"
    npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error
  fi
}

# One venv for every Python reference the tests run: the PyTorch/torchvision/smp goldens
# (tests/reference/*.py) and a real MLflow tracking server, which the MLflow tests start from
# $LENS2LOGIT_MLFLOW (and fail without it). Pinned; it lives outside the checkout, named by a hash
# of the pins, so CI's fresh clones reuse it and a change of pins makes a new one (the old one is
# removed), as does another python3. torch on PyPI brings its CUDA libraries (6.3 GB installed, about
# 3 minutes): its libtorch links them, so even a CPU-only import needs them.
PY_REFERENCES=(
  torch==2.14.1
  torchvision==0.29.2
  segmentation-models-pytorch==0.6.0
  timm==1.0.31
  huggingface-hub==2.4.0
  safetensors==0.8.0
  numpy==2.4.6
  mlflow==3.17.2
  # the camera fit's pairs (tests/reference/camera_pair.py): a DNG writer and LibRaw
  pidng==4.0.9
  rawpy==0.28.0
  pillow==13.0.0
)
ensure_python_references() {
  local hash cache venv
  hash="$({ python3 --version; printf '%s\n' "${PY_REFERENCES[@]}"; } | sha256sum | cut -c1-12)"
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/lens2logit"
  venv="$cache/py-$hash"
  # .complete is written last: an interrupted install is started again from scratch
  if [ ! -f "$venv/.complete" ] || ! "$venv/bin/python" -c '' 2>/dev/null; then
    # Debian's python3 makes venvs only with python3-venv (ensurepip)
    python3 -c 'import ensurepip' 2>/dev/null || ensure_apt python3 python3-venv
    say "installing the Python references (${PY_REFERENCES[*]}) in $venv (6 GB, a few minutes, once)"
    rm -rf "$venv"
    mkdir -p "$cache"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir "${PY_REFERENCES[@]}"
    "$venv/bin/python" -c 'import torch, torchvision, segmentation_models_pytorch, safetensors, numpy, mlflow, pidng, rawpy, PIL'
    touch "$venv/.complete"
    local old
    for old in "$cache"/py-*; do
      if [ "$old" != "$venv" ]; then say "removing the previous Python references $old"; rm -rf "$old"; fi
    done
  fi
  export LENS2LOGIT_PYTHON="$venv/bin/python"
  export LENS2LOGIT_MLFLOW="$venv/bin/mlflow"
}

# The PyTorch goldens of the pretrained models' parity tests (tests/reference/pretrained.py: seeded
# torchvision and smp models saved as safetensors and .pth, their logits and one AdamW step), written
# into target/pretrained once per version of the script (1.4 GB, under a minute).
write_pretrained_references() {
  local out="$ROOT/target/pretrained"
  if [ ! -f "$out/.complete" ] || [ "$ROOT/tests/reference/pretrained.py" -nt "$out/.complete" ]; then
    say "writing the pretrained models' PyTorch references into $out"
    rm -rf "$out"
    "$LENS2LOGIT_PYTHON" "$ROOT/tests/reference/pretrained.py" --out "$out"
    touch "$out/.complete"
  fi
  export LENS2LOGIT_PRETRAINED="$out"
}

# The float32 accuracy draws of the parametrized ISP (tests/reference/isp_numerics.py): 76 MB of
# inputs and float64 gradients, written once per change of the script.
write_isp_numerics_reference() {
  local out="$ROOT/target/references/isp_numerics.safetensors"
  if [ ! -f "$out" ] || [ "$ROOT/tests/reference/isp_numerics.py" -nt "$out" ] ||
     [ "$ROOT/tests/reference/param_isp.py" -nt "$out" ]; then
    say "writing the parametrized ISP's float64 gradient draws into $out"
    "$LENS2LOGIT_PYTHON" "$ROOT/tests/reference/isp_numerics.py" --out "$out"
  fi
  export LENS2LOGIT_ISP_NUMERICS="$out"
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

# The threaded page module rebuilds std with atomics, which only a nightly toolchain can; pinned.
NIGHTLY=nightly-2026-05-19
ensure_nightly() {
  if ! rustup run "$NIGHTLY" rustc --version >/dev/null 2>&1 ||
     ! rustup component list --toolchain "$NIGHTLY" --installed 2>/dev/null | grep -q '^rust-src'; then
    say "installing the $NIGHTLY toolchain with rust-src (for the threaded page module)"
    rustup toolchain install "$NIGHTLY" --profile minimal --component rust-src
  fi
}

# The page's wasm modules and their JS glue, each a function (cargo, then wasm-bindgen into its
# folder of pkg/): pkg/ runs on one thread anywhere; pkg/threads/ (atomics, rayon over Web Workers)
# runs where the page is cross-origin isolated; pkg/labdb/ (SQLite) and pkg/dng/ (rawler) load on
# first use beside either. All at opt-level 3 (speed before size), precompressed by compress_pkg.
# LENS2LOGIT_BENCH=1 builds the benchmarks' entry points into the modules (tests/bench/run.mjs).
bench_feature() { [ -z "${LENS2LOGIT_BENCH:-}" ] || printf 'bench'; }

# A panic's location names its file relative to its crate's folder ("rayon-core-1.13.0/src/...",
# "core/src/..."), not under this machine's registry and toolchain folders (about 250 such paths:
# 1,200 bytes of the threaded module's brotli size on 2026-12-07).
remap_source_paths() {
  local sources="${CARGO_HOME:-$HOME/.cargo}/registry/src" registry
  # the last match applies: each registry's folder where cargo has made it, else their parent
  printf ' --remap-path-prefix=%s/=' "$sources"
  for registry in "$sources"/*/; do
    [ -d "$registry" ] && printf ' --remap-path-prefix=%s=' "$registry"
  done
  printf ' --remap-path-prefix=%s/lib/rustlib/src/rust/library/=' "$(rustc "+$NIGHTLY" --print sysroot)"
}
# The one-thread module is built as the threaded one is, std rebuilt (without atomics) on the
# pinned nightly in target/one-thread/: std compiled for panic = abort and the module's profile is
# 15 KB brotli smaller than the prebuilt one (1.189 against 1.205 MB, measured 2026-12-07), which
# keeps the module in its 1.2 MB budget. Both main modules rebuild std without its `backtrace`
# feature (-Z build-std-features lists the features kept): a panic's message stays, its backtrace
# code goes.
module_one_thread() {
  say "building the page's wasm module (one thread, $NIGHTLY, std rebuilt)"
  RUSTFLAGS="--cfg getrandom_backend=\"wasm_js\" -C target-feature=+simd128$(remap_source_paths)" \
    cargo "+$NIGHTLY" build -p lens2logit-web --lib --target wasm32-unknown-unknown \
      --profile wasm-release --features "$(bench_feature)" -Z build-std=panic_abort,std -Z build-std-features=panic-unwind \
      --target-dir target/one-thread &&
    bindgen_module lens2logit_web lens2logit pkg target/one-thread
}

# The threaded module's Rust alone (std rebuilt with atomics, in target/threads/): serve.sh runs it
# beside the other builds, whose target/ it does not share.
module_threaded_rust() {
  say "building the page's threaded wasm module ($NIGHTLY, std with atomics)"
  # RUSTFLAGS replaces .cargo/config.toml's flags: repeat them, add atomics, and (since Rust 1.92
  # no longer implies it) link a shared, imported memory with the TLS symbols wasm-bindgen's thread
  # start-up needs. wasm-bindgen finds the atomics in the target_features section, which
  # strip = true would remove.
  local link=""
  for arg in --shared-memory --import-memory --max-memory=4294967296 --export=__wasm_init_tls \
             --export=__tls_size --export=__tls_align --export=__tls_base; do
    link="$link -C link-arg=$arg"
  done
  CARGO_PROFILE_WASM_RELEASE_STRIP=debuginfo \
  RUSTFLAGS="--cfg getrandom_backend=\"wasm_js\" -C target-feature=+simd128,+atomics,+bulk-memory,+mutable-globals$link$(remap_source_paths)" \
    cargo "+$NIGHTLY" build -p lens2logit-web --lib --target wasm32-unknown-unknown --profile wasm-release \
      --features "threads $(bench_feature)" -Z build-std=panic_abort,std -Z build-std-features=panic-unwind --target-dir target/threads
}

module_threaded_glue() {
  # --remove-name-section: the names strip = true would have removed (1.6 MB raw, 0.1 MB brotli);
  # a benchmarks' build keeps them, for the function names of run.mjs page_profile.
  # wasm-bindgen-rayon's worker imports its module as the package directory ('../../..'), which
  # only a bundler resolves; name the file so any static server does
  local names=(--remove-name-section)
  [ -z "$(bench_feature)" ] || names=()
  bindgen_module lens2logit_web lens2logit pkg/threads target/threads "${names[@]}" &&
    sed -i "s#import('../../..')#import('../../../lens2logit.js')#" \
    pkg/threads/snippets/wasm-bindgen-rayon-*/src/workerHelpers.js
}

# The lab log's SQL module, loaded when the SQL box is first used: SQLite's C, compiled for wasm32
# by clang, one thread (it runs beside either main module, with a memory of its own). Its Rust and
# its glue are steps of their own: serve.sh compiles the Rust at low priority from the start and
# binds it once wasm-bindgen-cli is installed, while the page is already served. Both build in a
# target directory of their own, so that cargo's lock on target/ never makes the server's build
# (or --host's one-thread module) wait for them.
LAZY_MODULES_TARGET=target/lazy-modules
module_sql_rust() {
  ensure_apt clang
  say "building the page's SQL module (SQLite)"
  cargo build -p lens2logit-labdb-web --lib --target wasm32-unknown-unknown --profile wasm-release \
    --target-dir "$LAZY_MODULES_TARGET"
}
module_sql_glue() { bindgen_module lens2logit_labdb_web lens2logit_labdb pkg/labdb "$LAZY_MODULES_TARGET"; }
module_sql() { module_sql_rust && module_sql_glue; }

# The DNG module (the decoder, rawler, without the lab), loaded the first time the page meets a
# DNG, as the SQL module is.
module_dng_rust() {
  say "building the page's DNG module (rawler)"
  cargo build -p lens2logit-dng-web --lib --target wasm32-unknown-unknown --profile wasm-release \
    --target-dir "$LAZY_MODULES_TARGET"
}
module_dng_glue() { bindgen_module lens2logit_dng_web lens2logit_dng pkg/dng "$LAZY_MODULES_TARGET"; }
module_dng() { module_dng_rust && module_dng_glue; }

# bindgen_module CRATE NAME DIR [TARGET_DIR] [FLAGS...]: the module's JS glue into DIR, replaced;
# kept where it is newer than cargo's module (a second serve.sh). Written in target/glue/ first and
# moved into place, since serve.sh binds the SQL and DNG modules while the page is served.
bindgen_module() {
  local crate="$1" name="$2" dir="$3" target="${4:-target}"
  local module="$target/wasm32-unknown-unknown/wasm-release/$crate.wasm" staged="target/glue/$3"
  [ "$dir/${name}_bg.wasm" -nt "$module" ] && return 0
  rm -rf "$staged" &&
    wasm-bindgen --target web --no-typescript "${@:5}" --out-dir "$staged" --out-name "$name" "$module" &&
    rm -rf "$dir"/"$name"* "$dir"/snippets && mkdir -p "$dir" && mv "$staged"/* "$dir"/ &&
    rmdir "$staged"
}

# The .br and .gz copies `lens2logit serve` sends, one process per core (a copy newer than its
# file is kept: written through stdout, so not given the file's own time; written beside and
# renamed, so the server never sends half a copy), and each module's sizes.
compress_pkg() {
  say "compressing the modules (brotli -q 11, gzip -9)"
  find pkg \( -name '*.wasm' -o -name '*.js' \) -print0 |
    xargs -0 -P "$(nproc)" -I{} sh -c '[ "$1.br" -nt "$1" ] && [ "$1.gz" -nt "$1" ] ||
      { brotli -q 11 -c "$1" > "$1.br.$$" && gzip -9 -c "$1" > "$1.gz.$$" &&
        mv "$1.br.$$" "$1.br" && mv "$1.gz.$$" "$1.gz"; }' _ {} ||
    return 1
  local f
  for f in $(find pkg -name '*.wasm' | sort); do
    say "$f: $(stat -c %s "$f") bytes, brotli $(stat -c %s "$f.br"), gzip $(stat -c %s "$f.gz")"
  done
}

# Stops a background build: the job's shell and its cargo.
stop_job() {
  pkill -P "$1" 2>/dev/null || true
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# Every module: what the tests and the static site need. The threaded module builds beside the
# others: its std rebuild and single-unit link leave a core idle, and its target directory is its
# own. Steps are chained, since test.sh runs this where `set -e` does not hold (in an `if`).
build_page() {
  rm -rf pkg
  local threaded
  module_threaded_rust &
  threaded=$!
  if module_one_thread && module_sql && module_dng; then
    wait "$threaded" && module_threaded_glue && compress_pkg
  else
    stop_job "$threaded"
    return 1
  fi
}

# dist/: the page (www/) and the modules (pkg/) as one folder any static server can serve, and
# `_headers` with the headers `lens2logit serve` sends (COOP/COEP and the page's CSP, csp.txt).
build_site() {
  say "assembling the static site in dist/"
  rm -rf dist
  mkdir -p dist
  cp -r www/. dist/
  cp -r pkg dist/pkg
  {
    echo "/*"
    echo "  Cross-Origin-Opener-Policy: same-origin"
    echo "  Cross-Origin-Embedder-Policy: require-corp"
    echo "  Content-Security-Policy: $(cat www/csp.txt)"
  } > dist/_headers
  say "dist/: $(find dist -type f | wc -l) files, $(du -sh dist | cut -f1); upload it to any static host"
}

# the page's server alone: no core, no GPU or HTTP client stack to compile for serving
build_server() {
  say "building the page's server"
  cargo build --release -p lens2logit-serve
}

build_cli() {
  say "building the native CLI"
  cargo build --release -p lens2logit-cli --bin lens2logit --examples
}
