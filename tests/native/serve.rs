//! `lens2logit serve` as a user meets it: MIME types, Range, cross-origin isolation, errors.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::cli::lens2logit;

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the real binary on a free port over a throwaway page and wasm file.
fn start(dir: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lens2logit"))
        .args(["serve", "--port", "0", "--www"])
        .arg(dir.join("www"))
        .arg("--pkg")
        .arg(dir.join("pkg"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("start lens2logit serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    Server { child, url }
}

fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("www")).unwrap();
    std::fs::create_dir_all(dir.path().join("pkg/threads")).unwrap();
    std::fs::write(
        dir.path().join("www/index.html"),
        "<!doctype html><title>t</title>",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("www/csp.txt"),
        "default-src 'self'; connect-src 'self'\n",
    )
    .unwrap();
    let wasm: Vec<u8> = (0..=255u8).collect();
    std::fs::write(dir.path().join("pkg/threads/lens2logit_bg.wasm"), wasm).unwrap();
    dir
}

#[test]
fn serves_wasm_with_mime_range_and_isolation_headers() {
    let dir = fixture();
    let server = start(dir.path());
    let client = reqwest::blocking::Client::new();

    let page = client.get(&server.url).send().unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cross-origin-opener-policy"], "same-origin");
    assert_eq!(
        page.headers()["cross-origin-embedder-policy"],
        "require-corp"
    );
    // the page's policy (www/csp.txt) on every response: workers and modules run under it too
    assert_eq!(
        page.headers()["content-security-policy"],
        "default-src 'self'; connect-src 'self'"
    );

    let wasm_url = format!("{}pkg/threads/lens2logit_bg.wasm", server.url);
    let wasm = client.get(&wasm_url).send().unwrap();
    assert_eq!(wasm.headers()["content-type"], "application/wasm");
    assert_eq!(
        wasm.headers()["content-security-policy"],
        "default-src 'self'; connect-src 'self'"
    );
    assert_eq!(wasm.bytes().unwrap().len(), 256);

    let part = client
        .get(&wasm_url)
        .header("Range", "bytes=10-19")
        .send()
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], "bytes 10-19/256");
    assert_eq!(
        part.bytes().unwrap().to_vec(),
        (10..20u8).collect::<Vec<_>>()
    );

    let missing = client.get(format!("{}nope.js", server.url)).send().unwrap();
    assert_eq!(missing.status(), 404);

    // a worker asked for with the user's Zenodo mirror may connect there, and only there
    let worker = client
        .get(format!(
            "{}index.html?connect=https%3A%2F%2Fmirror.example%3A8443%2Fapi",
            server.url
        ))
        .send()
        .unwrap();
    assert_eq!(
        worker.headers()["content-security-policy"],
        "default-src 'self'; connect-src https://mirror.example:8443 'self'"
    );
}

/// The build's precompressed copies go to browsers that accept them, the plain file elsewhere.
#[test]
fn serves_the_precompressed_module_to_browsers_that_accept_it() {
    let dir = fixture();
    std::fs::write(
        dir.path().join("pkg/threads/lens2logit_bg.wasm.br"),
        b"brotli bytes",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("pkg/threads/lens2logit_bg.wasm.gz"),
        b"gzip bytes",
    )
    .unwrap();
    let server = start(dir.path());
    let client = reqwest::blocking::Client::new();
    let wasm_url = format!("{}pkg/threads/lens2logit_bg.wasm", server.url);
    for (accept, encoding, body) in [
        ("br, gzip", Some("br"), &b"brotli bytes"[..]),
        ("gzip", Some("gzip"), &b"gzip bytes"[..]),
        ("identity", None, &(0..=255u8).collect::<Vec<_>>()[..]),
    ] {
        let response = client
            .get(&wasm_url)
            .header("Accept-Encoding", accept)
            .send()
            .unwrap();
        assert_eq!(response.headers()["content-type"], "application/wasm");
        assert_eq!(
            response
                .headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap()),
            encoding,
            "{accept}"
        );
        assert_eq!(response.bytes().unwrap().as_ref(), body, "{accept}");
    }
}

#[test]
fn refuses_to_start_without_a_built_page() {
    let dir = tempfile::tempdir().unwrap();
    let out = lens2logit(&["serve", "--port", "0", "--www", "."], dir.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no page at"), "{err}");
}
