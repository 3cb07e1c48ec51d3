//! A server that behaves like Zenodo on both endpoints, with faults chosen by the first path
//! segment (`/ok`, `/rate-limit`, `/truncate`, `/corrupt`, `/entries`, where only the `/files`
//! listing shape answers, `/mirror`, a mirror whose content URL honours Range with CORS, and
//! `/large`, whose microscopy archive has a central directory larger than one first request),
//! serving the fixture archives; other first segments serve the same tiles in another layout of
//! the record (`/bare`, `/nested`, `/toplevel`: see `fixtures::layout`; `/full`: full DNG images
//! and masks; `/flatviews`: the paper's views in one flat folder; `/bomb`: a deflate bomb, built
//! on the first request), like `/mirror` honouring Range with CORS on the content URL; the lab's
//! page is served beside it so the page can reach it from its own origin.
//!
//! - `/api/records/<id>` and `/api/records/<id>/files` list the files in Zenodo's two shapes,
//!   with `links.self` pointing nowhere (as on Zenodo, build URLs from the key);
//! - `/api/records/<id>/files/<key>/content` sends CORS headers and ignores Range;
//! - `/records/<id>/files/<key>` honours Range and sends no CORS headers;
//! - `/photos/<name>` serves a user's camera raws (DNG) for the page tests to drop.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use md5::{Digest, Md5};

use crate::fixtures::{
    bomb_record, corrupted, drone_zip, flat_views_record, full_image_record, layout,
    microscopy_zip, photos, PADDED_ENTRIES,
};

pub const RECORD: &str = "5235536";

/// A record's files: key, bytes, md5 of the bytes.
type Files = Vec<(String, Vec<u8>, String)>;

struct Served {
    files: Files,
    /// The other layouts' files, by mode.
    layouts: HashMap<String, Files>,
    /// `/bomb`'s files, built when first asked for (deflating 160 MiB takes a while).
    bomb: OnceLock<Files>,
    /// A user's camera raws by name.
    photos: HashMap<String, Vec<u8>>,
    /// The microscopy archive of `/large`.
    large: Vec<u8>,
    rate_limited: HashMap<String, AtomicBool>,
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn with_md5(files: Vec<(String, Vec<u8>)>) -> Files {
    files
        .into_iter()
        .map(|(k, b)| {
            let md5 = md5_hex(&b);
            (k, b, md5)
        })
        .collect()
}

/// The fixture archives: (key, bytes, md5 of the intact bytes).
fn archives() -> Files {
    with_md5(vec![
        ("Raw-Microscopy.zip".into(), microscopy_zip(0)),
        ("Raw-Drone.zip".into(), drone_zip()),
    ])
}

impl Served {
    fn files_of(&self, mode: &str) -> &Files {
        if mode == "bomb" {
            return self.bomb.get_or_init(|| with_md5(bomb_record()));
        }
        self.layouts.get(mode).unwrap_or(&self.files)
    }
}

fn bytes_for(state: &Served, mode: &str, key: &str) -> Option<Vec<u8>> {
    let (_, bytes, _) = state.files_of(mode).iter().find(|(k, _, _)| k == key)?;
    Some(match mode {
        "corrupt" => corrupted(bytes.clone()),
        "large" if key == "Raw-Microscopy.zip" => state.large.clone(),
        _ => bytes.clone(),
    })
}

/// The whole file, or the byte range asked for (206 with Content-Range).
fn ranged_response(headers: &HeaderMap, bytes: Vec<u8>, cors: bool) -> Response {
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)));
    let mut response = match range {
        Some((start, end)) if start <= end && end < bytes.len() => (
            StatusCode::PARTIAL_CONTENT,
            [(
                header::CONTENT_RANGE,
                format!("bytes {start}-{end}/{}", bytes.len()),
            )],
            bytes[start..=end].to_vec(),
        )
            .into_response(),
        _ => bytes.into_response(),
    };
    if cors {
        response.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            header::HeaderValue::from_static("*"),
        );
    }
    response
}

/// The record's files as Zenodo lists them: `files` with `links.self` (pointing nowhere, as on
/// Zenodo), or `entries` with `links.content`.
fn files_json(s: &Served, mode: &str, record: &str, shape: &str) -> serde_json::Value {
    let files: Vec<serde_json::Value> = s
        .files_of(mode)
        .iter()
        .map(|(k, b, m)| {
            // `/corrupt` states the intact file's checksum, as Zenodo would
            let (size, md5) = match bytes_for(s, mode, k) {
                Some(served) if mode == "large" => (served.len(), md5_hex(&served)),
                _ => (b.len(), m.clone()),
            };
            let links = if shape == "files" {
                serde_json::json!({ "self": format!("/{mode}/nowhere/{k}") })
            } else {
                serde_json::json!({ "content": format!("/{mode}/api/records/{record}/files/{k}/content") })
            };
            serde_json::json!({"key": k, "size": size, "checksum": format!("md5:{md5}"), "links": links})
        })
        .collect();
    serde_json::json!({ shape: files })
}

async fn listing(
    State(s): State<Arc<Served>>,
    UrlPath((mode, record)): UrlPath<(String, String)>,
) -> Response {
    if record != RECORD || mode == "entries" {
        return StatusCode::NOT_FOUND.into_response();
    }
    (
        [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
        axum::Json(files_json(&s, &mode, &record, "files")),
    )
        .into_response()
}

async fn entries(
    State(s): State<Arc<Served>>,
    UrlPath((mode, record)): UrlPath<(String, String)>,
) -> Response {
    if record != RECORD {
        return StatusCode::NOT_FOUND.into_response();
    }
    (
        [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
        axum::Json(files_json(&s, &mode, &record, "entries")),
    )
        .into_response()
}

async fn content(
    State(s): State<Arc<Served>>,
    UrlPath((mode, _record, key)): UrlPath<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(bytes) = bytes_for(&s, &mode, &key) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let cors = (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
    if mode == "rate-limit" && !s.rate_limited[&key].swap(true, Ordering::SeqCst) {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [cors, (header::RETRY_AFTER, "1")],
            "slow down",
        )
            .into_response();
    }
    if mode == "truncate" {
        // half the body, then the connection breaks
        let half = bytes::Bytes::from(bytes[..bytes.len() / 2].to_vec());
        let stream = futures_util::stream::unfold(0, move |step| {
            let half = half.clone();
            async move {
                match step {
                    0 => Some((Ok::<_, std::io::Error>(half), 1)),
                    1 => {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        Some((Err(std::io::Error::other("connection reset")), 2))
                    }
                    _ => None,
                }
            }
        });
        return (
            [
                cors,
                (header::CONTENT_LENGTH, &bytes.len().to_string() as &str),
            ],
            Body::from_stream(stream),
        )
            .into_response();
    }
    if mode == "mirror" || mode == "bomb" || s.layouts.contains_key(&mode) {
        return ranged_response(&headers, bytes, true);
    }
    ([cors], bytes).into_response()
}

/// The record page's download: Range honoured, no CORS.
async fn ranged(
    State(s): State<Arc<Served>>,
    UrlPath((mode, _record, key)): UrlPath<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    match bytes_for(&s, &mode, &key) {
        Some(bytes) => ranged_response(&headers, bytes, false),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn photo(State(s): State<Arc<Served>>, UrlPath(name): UrlPath<String>) -> Response {
    match s.photos.get(&name) {
        Some(bytes) => bytes.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Weights a model may start from, as a model hub serves them (with CORS, as the hubs do): the
/// seeded PyTorch models the test command writes into `$LENS2LOGIT_PRETRAINED`.
async fn weights(UrlPath(name): UrlPath<String>) -> Response {
    let dir = std::env::var("LENS2LOGIT_PRETRAINED").unwrap_or_default();
    let known = name.ends_with(".pth") || name.ends_with(".safetensors");
    let path = std::path::Path::new(&dir).join(&name);
    match std::fs::read(&path) {
        Ok(bytes) if known && !name.contains('/') && !dir.is_empty() => {
            ([(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], bytes).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The Zenodo-like routes, fresh fault state per call.
pub fn routes() -> Router {
    let files = archives();
    let rate_limited = files
        .iter()
        .map(|(k, _, _)| (k.clone(), AtomicBool::new(false)))
        .collect();
    let mut layouts: HashMap<String, Files> = ["bare", "nested", "toplevel"]
        .into_iter()
        .map(|name| (name.to_string(), with_md5(layout(name))))
        .collect();
    layouts.insert("full".into(), with_md5(full_image_record()));
    layouts.insert("flatviews".into(), with_md5(flat_views_record()));
    let photos: HashMap<String, Vec<u8>> = photos().into_iter().collect();
    let state = Arc::new(Served {
        files,
        layouts,
        bomb: OnceLock::new(),
        photos,
        large: microscopy_zip(PADDED_ENTRIES),
        rate_limited,
    });
    Router::new()
        .route("/{mode}/api/records/{record}", get(listing))
        .route("/{mode}/api/records/{record}/files", get(entries))
        .route(
            "/{mode}/api/records/{record}/files/{key}/content",
            get(content),
        )
        .route("/{mode}/records/{record}/files/{key}", get(ranged))
        .route("/photos/{name}", get(photo))
        .route("/weights/{name}", get(weights))
        .with_state(state)
}

/// Serves the routes (and the page, when www/pkg exist) on a free port; returns the base URL.
pub async fn start(www: &Path, pkg: &Path) -> String {
    let app = lens2logit_serve::lab_router(www, pkg, routes());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}
