#!/usr/bin/env bash
# Builds what the lab needs and serves it: http://127.0.0.1:8080/ (pass --port N for another).
source "$(dirname "$0")/common.sh"

ensure_apt brotli
ensure_wasm_target
ensure_nightly
ensure_wasm_bindgen
build_page
build_server
exec target/release/lens2logit-serve "$@"
