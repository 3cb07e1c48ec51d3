#!/usr/bin/env bash
# Builds what the lab needs and serves it: http://127.0.0.1:8080/ (pass --port N for another).
# The server sends COOP/COEP, so the page it serves is cross-origin isolated and runs the threaded
# module (?threads=1: the same module on one thread); the one-thread module is built only with
# --host, since a page opened from another machine over plain http is not a secure context, so not
# isolated. The threaded module builds beside the rest, as in build_page, and wasm-bindgen-cli
# installs beside the other modules' Rust and the server (its glue steps wait for it).
source "$(dirname "$0")/common.sh"

ensure_apt brotli clang
ensure_wasm_target
ensure_nightly
module_threaded_rust &
threaded=$!
ensure_wasm_bindgen &
bindgen=$!
trap 'stop_job "$threaded"; stop_job "$bindgen"' EXIT
module_sql_rust
module_dng_rust
build_server
wait "$bindgen"
module_sql_glue
module_dng_glue
case " $* " in
  *" --host "* | *" --host="*) module_one_thread ;;
  *) rm -f pkg/lens2logit.js* pkg/lens2logit_bg.wasm* ;;
esac
wait "$threaded"
trap - EXIT
module_threaded_glue
compress_pkg
exec target/release/lens2logit-serve "$@"
