#!/usr/bin/env bash
# Builds what the lab needs and serves it: http://127.0.0.1:8080/ (pass --port N for another).
# The server sends COOP/COEP, so the page it serves is cross-origin isolated and runs the threaded
# module (?threads=1: the same module on one thread); the one-thread module is built only with
# --host, since a page opened from another machine over plain http is not a secure context, so not
# isolated. The page is served as soon as the threaded module, its glue and the server are built.
# The SQL and DNG modules, which the page loads on first use (the lab log's SQL box, a DNG), compile
# at the lowest priority from the start, on what the other builds leave idle, and are bound and
# moved into pkg/ while the page is served; until then the page names them as still being built.
source "$(dirname "$0")/common.sh"

ensure_apt brotli clang
ensure_wasm_target
ensure_nightly
module_threaded_rust &
threaded=$!
ensure_wasm_bindgen &
bindgen=$!
(
  renice -n 19 -p "$BASHPID" >/dev/null
  # wasm-bindgen-cli's install is a sibling job: it is done when its process is gone
  if module_sql_rust && module_dng_rust &&
     { while kill -0 "$bindgen" 2>/dev/null; do sleep 1; done; } &&
     module_sql_glue && module_dng_glue && compress_pkg; then
    say "the SQL and DNG modules are served too"
  else
    say "building the SQL or DNG module failed (above): the page works, but the lab log's SQL box" \
      "and DNG files will not until scripts/serve.sh has built them"
  fi
) &
lazy=$!
trap 'stop_job "$threaded"; stop_job "$bindgen"; stop_job "$lazy"' EXIT
build_server
wait "$bindgen"
case " $* " in
  *" --host "* | *" --host="*) module_one_thread ;;
  *) rm -f pkg/lens2logit.js* pkg/lens2logit_bg.wasm* ;;
esac
wait "$threaded"
module_threaded_glue
compress_pkg
say "serving the page"
# not exec: the EXIT trap stops the SQL and DNG builds when the server stops (Ctrl-C)
target/release/lens2logit-serve "$@"
