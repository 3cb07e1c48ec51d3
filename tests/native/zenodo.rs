//! The Zenodo client, the streaming and the random-access archive readers and `lens2logit fetch`
//! against a local server that behaves like Zenodo (tests/support/zenodo_like.rs), fault by fault.

use std::time::Instant;

use lens2logit::data::discovery::DatasetKind;
use lens2logit::data::fetch::{fetch, FetchEvent, FetchRequest, FetchSummary};
use lens2logit::data::http::CancelToken;
use lens2logit::data::zenodo::{Opened, ZenodoClient};
use lens2logit::raw::decode_tile;
use lens2logit::Error;

use crate::cli::{lens2logit, lens2logit_ok};
use crate::zenodo_like::{start, RECORD};

/// Every archive read whole, as in the browser against Zenodo (natively the record page's
/// byte ranges would be used otherwise).
const STREAM: bool = false;

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
    random_access: bool,
) -> (Result<FetchSummary, Error>, Vec<FetchEvent>) {
    let client = ZenodoClient::new(base, RECORD);
    let request = FetchRequest {
        dataset,
        intensity: 100,
        limit,
        random_access,
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
    let (result, events) = run(
        &rt,
        &format!("{url}/ok"),
        DatasetKind::Microscopy,
        None,
        STREAM,
    );
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

    let (result, events) = run(
        &rt,
        &format!("{url}/entries"),
        DatasetKind::Drone,
        Some(3),
        STREAM,
    );
    assert_eq!(result.unwrap().tiles, 3);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, FetchEvent::Mask { .. }))
            .count(),
        4
    );
    assert!(events.iter().any(|e| matches!(
        e,
        FetchEvent::ProcessedView { view, stem, .. } if view == "bilinear" && stem == "DJI_0000_0_0"
    )));
}

#[test]
fn waits_out_a_429_with_retry_after() {
    let (rt, url) = server();
    let start = Instant::now();
    let (result, _) = run(
        &rt,
        &format!("{url}/rate-limit"),
        DatasetKind::Drone,
        None,
        STREAM,
    );
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
        STREAM,
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
    let (result, events) = run(
        &rt,
        &format!("{url}/corrupt"),
        DatasetKind::Drone,
        None,
        STREAM,
    );
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
    let files = rt.block_on(client.list_files(&cancel)).unwrap();
    let file = files.iter().find(|f| f.key == key).unwrap();
    // natively the record page's ranges are used; asked to stream, the content URL
    match rt.block_on(client.open(file, true, &cancel)).unwrap() {
        Opened::Ranged { url, size } => {
            assert_eq!((url, size), (client.ranged_url(key), file.size));
        }
        Opened::Stream(_) => panic!("the record page's byte ranges were not used"),
    }
    assert!(matches!(
        rt.block_on(client.open(file, false, &cancel)).unwrap(),
        Opened::Stream(_)
    ));
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

/// (file, bytes, label) of the delivered tiles, in order.
fn tile_events(events: &[FetchEvent]) -> Vec<(String, Vec<u8>, Option<String>)> {
    events
        .iter()
        .filter_map(|e| match e {
            FetchEvent::Tile {
                file, bytes, label, ..
            } => Some((file.clone(), bytes.clone(), label.clone())),
            _ => None,
        })
        .collect()
}

fn count(events: &[FetchEvent], what: fn(&FetchEvent) -> bool) -> usize {
    events.iter().filter(|e| what(e)).count()
}

/// Bytes read of an archive.
fn bytes_read(events: &[FetchEvent], archive: &str) -> u64 {
    events
        .iter()
        .rev()
        .find_map(|e| match e {
            FetchEvent::Progress { key, read, .. } if key == archive => Some(*read),
            _ => None,
        })
        .unwrap()
}

#[test]
fn random_access_reads_the_same_tiles_and_only_what_is_needed() {
    let (rt, url) = server();
    let ok = format!("{url}/ok");
    let (streamed, stream_events) = run(&rt, &ok, DatasetKind::Microscopy, None, STREAM);
    let (ranged, events) = run(&rt, &ok, DatasetKind::Microscopy, None, true);
    assert_eq!(ranged.unwrap(), streamed.unwrap());
    assert!(events.iter().any(|e| matches!(
        e,
        FetchEvent::Archive {
            random_access: true,
            ..
        }
    )));
    let (got, want) = (tile_events(&events), tile_events(&stream_events));
    assert_eq!(
        got.iter().map(|(f, b, _)| (f, b)).collect::<Vec<_>>(),
        want.iter().map(|(f, b, _)| (f, b)).collect::<Vec<_>>()
    );
    // the labels are read first, so every tile of a kept class arrives with its class
    assert_eq!(got.iter().filter(|(_, _, l)| l.is_some()).count(), 10);
    assert_eq!(
        count(&events, |e| matches!(e, FetchEvent::Verified { .. })),
        2
    );

    let (result, events) = run(&rt, &ok, DatasetKind::Drone, Some(1), true);
    assert_eq!(result.unwrap().tiles, 1);
    assert_eq!(
        count(&events, |e| matches!(e, FetchEvent::Mask { .. })),
        1,
        "only the mask of the tile read"
    );
    assert_eq!(
        count(&events, |e| matches!(e, FetchEvent::ProcessedView { .. })),
        1,
        "and the paper's view of it"
    );
}

#[test]
fn random_access_grows_its_window_over_a_large_central_directory() {
    let (rt, url) = server();
    let large = format!("{url}/large");
    for random_access in [true, STREAM] {
        let (result, events) = run(&rt, &large, DatasetKind::Microscopy, Some(3), random_access);
        assert_eq!(result.unwrap().tiles, 3, "random access: {random_access}");
        assert_eq!(tile_events(&events).len(), 3);
        assert!(events
            .iter()
            .any(|e| matches!(e, FetchEvent::Labels(l) if l.len() == 10)));
        if random_access {
            let size = rt
                .block_on(ZenodoClient::new(&large, RECORD).list_files(&CancelToken::default()))
                .unwrap()
                .into_iter()
                .find(|f| f.key == "Raw-Microscopy.zip")
                .unwrap()
                .size;
            let read = bytes_read(&events, "Raw-Microscopy.zip");
            assert!(
                read < size * 3 / 4,
                "read {read} bytes of a {size}-byte archive for 3 tiles"
            );
        }
    }
}

#[test]
fn random_access_skips_a_damaged_entry_and_keeps_the_rest() {
    let (rt, url) = server();
    let corrupt = format!("{url}/corrupt");
    for (dataset, tiles, masks) in [(DatasetKind::Drone, 4, 3), (DatasetKind::Microscopy, 11, 0)] {
        let (result, events) = run(&rt, &corrupt, dataset, None, true);
        assert_eq!(result.unwrap().tiles, tiles, "{dataset:?}");
        assert_eq!(
            count(&events, |e| matches!(e, FetchEvent::Mask { .. })),
            masks
        );
        let warnings: Vec<&String> = events
            .iter()
            .filter_map(|e| match e {
                FetchEvent::Warning(w) => Some(w),
                _ => None,
            })
            .collect();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("was skipped")
                && (warnings[0].contains("CRC") || warnings[0].contains("damaged")),
            "{warnings:?}"
        );
    }
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
        random_access: true,
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
            "--stream",
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
