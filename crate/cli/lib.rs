//! The parts of the command line that others compose: the lab's web server (`lens2logit serve`,
//! and the tests' Zenodo-like server, which serves the page beside its own routes).
#![cfg(not(target_arch = "wasm32"))]

pub mod page_router;
