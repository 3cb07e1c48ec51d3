//! The Zenodo client, streaming archive reader and `lens2logit fetch` against a local server that
//! behaves like Zenodo (tests/support/zenodo_like.rs), fault by fault.

use std::time::Instant;

use lens2logit::data::discovery::DatasetKind;
use lens2logit::data::fetch::{fetch, FetchEvent, FetchRequest, FetchSummary};
use lens2logit::data::http::CancelToken;
use lens2logit::data::zenodo::ZenodoClient;
use lens2logit::raw::decode_tile;
use lens2logit::Error;

use crate::cli::{lens2logit, lens2logit_ok};
use crate::zenodo_like::{start, RECORD};

fn server() -> (tokio::runtime::Runtime, String) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = runtime.block_on(start("no-www".as_ref(), "no-pkg".as_ref()));
    (runtime, url)
}

fn run(
    runtime: &tokio::runtime::Runtime,
    base: &str,
    dataset: DatasetKind,
    limit: Option<usize>,
) -> (Result<FetchSummary, Error>, Vec<FetchEvent>) {
    let client = ZenodoClient::new(base, RECORD);
    let request = FetchRequest {
        dataset,
        intensity: 100,
        limit,
    };
    let mut events = Vec::new();
    let result = runtime.block_on(fetch(
        &client,
        &request,
        &CancelToken::default(),
        &mut |e| {
            events.push(e);
            Ok(())
        },
    ));
    (result, events)
}

fn tiles(events: &[FetchEvent]) -> Vec<&Vec<u8>> {
    events
        .iter()
        .filter_map(|e| {
            if let FetchEvent::Tile { bytes, .. } = e {
                Some(bytes)
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn streams_tiles_labels_and_masks_and_verifies_both_archives() {
    let (rt, url) = server();
    let (result, events) = run(&rt, &format!("{url}/ok"), DatasetKind::Microscopy, None);
    assert_eq!(result.unwrap().tiles, 12);
    let got = tiles(&events);
    assert_eq!(got.len(), 12);
    assert_eq!(decode_tile(got[0], "t").unwrap().width(), 32);
    let labels = events
        .iter()
        .find_map(|e| {
            if let FetchEvent::Labels(l) = e {
                Some(l)
            } else {
                None
            }
        })
        .unwrap();
    assert_eq!(labels.len(), 10, "BAS has 2 samples and is dropped");
    let verified = events
        .iter()
        .filter(|e| matches!(e, FetchEvent::Verified { .. }))
        .count();
    assert_eq!(verified, 2);
    // tiles are handed out while the archive streams, before it is verified
    let first_tile = events
        .iter()
        .position(|e| matches!(e, FetchEvent::Tile { .. }))
        .unwrap();
    let first_verified = events
        .iter()
        .position(|e| matches!(e, FetchEvent::Verified { .. }))
        .unwrap();
    assert!(first_tile < first_verified);

    let (result, events) = run(&rt, &format!("{url}/entries"), DatasetKind::Drone, Some(3));
    assert_eq!(result.unwrap().tiles, 3);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, FetchEvent::Mask { .. }))
            .count(),
        4
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, FetchEvent::ProcessedView { .. })));
}

#[test]
fn waits_out_a_429_with_retry_after() {
    let (rt, url) = server();
    let start = Instant::now();
    let (result, _) = run(&rt, &format!("{url}/rate-limit"), DatasetKind::Drone, None);
    assert_eq!(result.unwrap().tiles, 4);
    assert!(
        start.elapsed().as_secs_f64() >= 1.0,
        "Retry-After: 1 was not honoured"
    );
}

#[test]
fn a_broken_download_discards_its_tiles_and_says_so() {
    let (rt, url) = server();
    let (result, events) = run(
        &rt,
        &format!("{url}/truncate"),
        DatasetKind::Microscopy,
        None,
    );
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("broke off") && err.contains("discarded"),
        "{err}"
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, FetchEvent::Discard { .. })));
}

#[test]
fn damaged_entries_fail_crc_or_deflate_and_md5_discards_the_archive() {
    let (rt, url) = server();
    let (result, events) = run(&rt, &format!("{url}/corrupt"), DatasetKind::Drone, None);
    assert!(result.is_err());
    let warnings: Vec<String> = events
        .iter()
        .filter_map(|e| {
            if let FetchEvent::Warning(w) = e {
                Some(w.clone())
            } else {
                None
            }
        })
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains("failed its CRC check")),
        "{warnings:?}"
    );
    let discards: Vec<String> = events
        .iter()
        .filter_map(|e| {
            if let FetchEvent::Discard { reason, .. } = e {
                Some(reason.clone())
            } else {
                None
            }
        })
        .collect();
    assert!(
        discards
            .iter()
            .any(|r| r.contains("compressed data is damaged")),
        "{discards:?}"
    );
    assert!(
        discards.iter().any(|r| r.contains("MD5 does not match")),
        "{discards:?}"
    );
}

#[test]
fn content_has_cors_without_range_and_the_record_file_range_without_cors() {
    let (rt, url) = server();
    let client = ZenodoClient::new(&format!("{url}/ok"), RECORD);
    let key = "Raw-Drone.zip";
    let cancel = CancelToken::default();
    assert!(!rt.block_on(client.serves_ranges(&client.content_url(key), &cancel)));
    assert!(rt.block_on(client.serves_ranges(&client.ranged_url(key), &cancel)));
    let http = reqwest::blocking::Client::new();
    let content = http
        .get(client.content_url(key))
        .header("Range", "bytes=0-9")
        .send()
        .unwrap();
    assert_eq!(content.status(), 200);
    assert_eq!(content.headers()["access-control-allow-origin"], "*");
    let ranged = http
        .get(client.ranged_url(key))
        .header("Range", "bytes=0-9")
        .send()
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert!(ranged
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    assert_eq!(ranged.bytes().unwrap().len(), 10);
}

#[test]
fn cancelling_stops_the_fetch() {
    let (rt, url) = server();
    let client = ZenodoClient::new(&format!("{url}/ok"), RECORD);
    let cancel = CancelToken::default();
    let request = FetchRequest {
        dataset: DatasetKind::Microscopy,
        intensity: 100,
        limit: None,
    };
    let mut seen = 0;
    let result = rt.block_on(fetch(&client, &request, &cancel, &mut |e| {
        if matches!(e, FetchEvent::Tile { .. }) {
            seen += 1;
            cancel.cancel();
        }
        Ok(())
    }));
    assert!(
        matches!(result, Err(Error::Cancelled)),
        "{:?}",
        result.err()
    );
    assert_eq!(seen, 1);
}

#[test]
fn fetch_cli_writes_tiles_labels_and_masks() {
    let (_rt, url) = server();
    let dir = tempfile::tempdir().unwrap();
    lens2logit_ok(
        &[
            "fetch",
            "--dataset",
            "microscopy",
            "--zenodo",
            &format!("{url}/ok"),
            "--out",
            "m",
        ],
        dir.path(),
    );
    let csv = std::fs::read_to_string(dir.path().join("m/labels.csv")).unwrap();
    assert_eq!(csv.lines().count(), 11, "{csv}");
    assert!(csv.contains("Cell_000.tiff,LYT"));
    assert!(
        !dir.path().join("m/Cell_010.tiff").exists(),
        "a tile of a dropped class was kept"
    );

    lens2logit_ok(
        &[
            "fetch",
            "--dataset",
            "drone",
            "--limit",
            "2",
            "--zenodo",
            &format!("{url}/ok"),
            "--out",
            "d",
        ],
        dir.path(),
    );
    assert!(dir.path().join("d/DJI_0001_0_0.tif").exists());
    assert!(dir.path().join("d/masks/DJI_0001_0_0.png").exists());
    assert!(!dir.path().join("d/DJI_0002_0_0.tif").exists());

    let out = lens2logit(
        &[
            "fetch",
            "--dataset",
            "drone",
            "--zenodo",
            &format!("{url}/corrupt"),
            "--out",
            "c",
        ],
        dir.path(),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("discarded"));
}
