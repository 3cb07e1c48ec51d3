//! The Zenodo client, the streaming and the random-access archive readers and `lens2logit fetch`
//! against a local server that behaves like Zenodo (tests/support/zenodo_like.rs), fault by fault.

use std::time::Instant;

use lens2logit::data::archive::MAX_ENTRY_BYTES;
use lens2logit::data::cancel::CancelToken;
use lens2logit::data::discovery::DatasetKind;
use lens2logit::data::drone_balance::DroneBalance;
use lens2logit::data::fetch::{fetch, FetchEvent, FetchRequest, FetchSummary};
use lens2logit::data::zenodo::{Opened, ZenodoClient};
use lens2logit::raw::decode_tile;
use lens2logit::Error;

use crate::cli::{left_in, lens2logit, lens2logit_ok};
use crate::fixtures::BOMB_ENTRY;
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
    let mut request = FetchRequest::new(dataset);
    request.limit = limit;
    request.random_access = random_access;
    run_request(runtime, base, &request)
}

/// One fetch of `request`: its result and every event.
fn run_request(
    runtime: &tokio::runtime::Runtime,
    base: &str,
    request: &FetchRequest,
) -> (Result<FetchSummary, Error>, Vec<FetchEvent>) {
    let client = ZenodoClient::new(base, RECORD);
    let mut events = Vec::new();
    let result = runtime.block_on(fetch(&client, request, &CancelToken::default(), &mut |e| {
        events.push(e);
        Ok(())
    }));
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
    // and the paper's view of it, where the fixture has one (of its first tile only)
    let read = &tile_events(&events)[0].0;
    assert_eq!(
        count(&events, |e| matches!(e, FetchEvent::ProcessedView { .. })),
        usize::from(read == "DJI_0000_0_0.tif"),
        "{read}"
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
            warnings[0].contains(" skipped: ")
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
    let request = FetchRequest::new(DatasetKind::Microscopy);
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
    // a seeded sample of 2 of the 4 tiles, each with its mask
    let written: Vec<String> = std::fs::read_dir(dir.path().join("d"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.ends_with(".tif").then_some(name)
        })
        .collect();
    assert_eq!(written.len(), 2, "{written:?}");
    for tile in &written {
        let mask = format!("d/masks/{}.png", tile.trim_end_matches(".tif"));
        assert!(dir.path().join(mask).exists());
    }

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
    // the tiles written before the archive failed went with it: no folder, no sibling
    assert_eq!(left_in(dir.path()), ["d", "m"]);
}

/// (file, bytes) of the delivered tiles sorted, the labels, and the masks by stem.
type Found = (
    Vec<(String, Vec<u8>)>,
    std::collections::BTreeMap<String, String>,
    std::collections::BTreeMap<String, Vec<u8>>,
);

fn found(events: &[FetchEvent]) -> Found {
    let mut tiles: Vec<(String, Vec<u8>)> = tile_events(events)
        .into_iter()
        .map(|(f, b, _)| (f, b))
        .collect();
    tiles.sort();
    let mut labels = std::collections::BTreeMap::new();
    let mut masks = std::collections::BTreeMap::new();
    for e in events {
        match e {
            FetchEvent::Labels(l) => labels.extend(l.clone()),
            FetchEvent::Tile {
                file,
                label: Some(class),
                ..
            } => {
                labels.insert(file.clone(), class.clone());
            }
            FetchEvent::Mask { stem, bytes } => {
                masks.insert(stem.clone(), bytes.clone());
            }
            _ => {}
        }
    }
    (tiles, labels, masks)
}

fn layout_lines(events: &[FetchEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            FetchEvent::Layout { key, lines } => Some(format!("{key}:\n{}", lines.join("\n"))),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_layout_of_the_record_gives_the_same_tiles_labels_and_masks() {
    let (rt, url) = server();
    for dataset in [DatasetKind::Microscopy, DatasetKind::Drone] {
        let (reference, events) = run(&rt, &format!("{url}/ok"), dataset, None, STREAM);
        reference.unwrap();
        let want = found(&events);
        assert!(!want.0.is_empty());
        for (mode, rule) in [
            ("ok", "a folder named after the dataset"),
            ("bare", "the archive's name"),
            ("nested", "the archive's name"),
            ("toplevel", ""),
        ] {
            for random_access in [STREAM, true] {
                let (result, events) =
                    run(&rt, &format!("{url}/{mode}"), dataset, None, random_access);
                let context = format!("{dataset:?} {mode} random access {random_access}");
                result.unwrap_or_else(|e| panic!("{context}: {e}"));
                let got = found(&events);
                assert_eq!(
                    got.0.iter().map(|t| &t.0).collect::<Vec<_>>(),
                    want.0.iter().map(|t| &t.0).collect::<Vec<_>>(),
                    "{context}"
                );
                assert!(got.0 == want.0, "{context}: the tiles' bytes differ");
                assert_eq!(got.1, want.1, "{context}: labels");
                assert_eq!(got.2, want.2, "{context}: masks");
                // the lab says which rule decided the tiles' dataset
                let layout = layout_lines(&events);
                let expected = match (mode, dataset) {
                    ("toplevel", DatasetKind::Microscopy) => "the tile extension",
                    ("toplevel", DatasetKind::Drone) => "the archive's name",
                    _ => rule,
                };
                assert!(
                    layout.contains(&format!("(dataset from {expected})")),
                    "{context}: {layout}"
                );
            }
        }
    }
}

#[test]
fn full_images_are_cut_into_the_papers_tiles_and_classified_by_their_masks() {
    let (rt, url) = server();
    let full = format!("{url}/full");
    for random_access in [STREAM, true] {
        let (result, events) = run(&rt, &full, DatasetKind::Drone, None, random_access);
        result.unwrap();
        let (tiles, _, masks) = found(&events);
        let names: Vec<&str> = tiles.iter().map(|t| t.0.as_str()).collect();
        // segmentation keeps the tiles with a car, numbered anew per image
        assert_eq!(names, ["00_00000.tif", "00_00001.tif", "01_00000.tif"]);
        for (name, bytes) in &tiles {
            let tile = decode_tile(bytes, name).unwrap();
            assert_eq!((tile.width(), tile.height()), (256, 256));
            assert!(masks.contains_key(name.trim_end_matches(".tif")), "{name}");
        }

        // classification: 8 tiles, the one with a car share between 0 and 1% left out (image 0:
        // 1 car, 2 empty; image 1: 1 car, 3 empty)
        let classify = |balance: DroneBalance| {
            let mut request = FetchRequest::new(DatasetKind::Drone);
            request.task = lens2logit::data::Task::Classification;
            request.random_access = random_access;
            request.drone_balance = balance;
            let (result, events) = run_request(&rt, &full, &request);
            result.unwrap();
            let (tiles, labels, masks) = found(&events);
            assert_eq!(tiles.len(), labels.len(), "{labels:?}");
            assert!(labels
                .keys()
                .all(|f| masks.contains_key(f.trim_end_matches(".tif"))));
            let of = |class: &str| -> Vec<String> {
                let files = labels.iter().filter(|(_, c)| c.as_str() == class);
                files.map(|(f, _)| f.clone()).collect()
            };
            let report = events
                .iter()
                .filter_map(|e| match e {
                    FetchEvent::Sample(how) => Some(how.clone()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("\n");
            (of("car"), of("no car"), report)
        };
        // the paper's set: per image one car tile and one empty one, car first, numbered anew
        let (car, no_car, report) = classify(DroneBalance::Balanced);
        assert_eq!(car, ["00_00000.tif", "01_00000.tif"]);
        assert_eq!(no_car, ["00_00001.tif", "01_00001.tif"]);
        assert!(
            report.contains("balanced per image (paper): 4 of the 8 tiles cut from 2 full images")
                && report.contains("seed 72")
                && report.contains("1 with a car share between 0 and 1% left out"),
            "{report}"
        );
        assert_eq!(classify(DroneBalance::Balanced).0, car);
        // every classed tile, under its place in the image
        let (car, no_car, report) = classify(DroneBalance::All);
        assert_eq!(car, ["00_00000.tif", "01_00003.tif"]);
        assert_eq!(no_car.len(), 5, "{no_car:?}");
        assert!(!no_car.contains(&"00_00001.tif".to_string()));
        assert!(report.contains("all tiles: 7 of the 8 tiles"), "{report}");
    }
}

#[test]
fn a_limit_draws_the_same_seeded_class_balanced_sample_by_stream_and_random_access() {
    let (rt, url) = server();
    let draw = |seed: u64, random_access: bool| {
        let mut request = FetchRequest::new(DatasetKind::Microscopy);
        request.limit = Some(4);
        request.seed = seed;
        request.random_access = random_access;
        let (result, events) = run_request(&rt, &format!("{url}/ok"), &request);
        result.unwrap();
        let mut tiles = tile_events(&events);
        tiles.sort();
        let how = events
            .iter()
            .find_map(|e| match e {
                FetchEvent::Sample(how) => Some(how.clone()),
                _ => None,
            })
            .unwrap();
        (tiles, how)
    };
    let (streamed, how) = draw(0, STREAM);
    let (ranged, _) = draw(0, true);
    assert_eq!(streamed, ranged);
    let classes: Vec<&str> = streamed.iter().map(|t| t.2.as_deref().unwrap()).collect();
    assert_eq!(
        (
            classes.iter().filter(|c| **c == "LYT").count(),
            classes.iter().filter(|c| **c == "MON").count()
        ),
        (2, 2),
        "{classes:?}"
    );
    assert!(
        how.contains("class-balanced") && how.contains("LYT 2/5"),
        "{how}"
    );
    let others: Vec<String> = (1..6)
        .map(|seed| {
            draw(seed, true)
                .0
                .into_iter()
                .map(|t| t.0)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    assert!(
        others.iter().any(|o| *o
            != streamed
                .iter()
                .map(|t| t.0.clone())
                .collect::<Vec<_>>()
                .join(",")),
        "every seed drew the same sample"
    );
}

#[test]
fn flat_processed_views_are_paired_with_their_tiles() {
    let (rt, url) = server();
    for random_access in [STREAM, true] {
        let (result, events) = run(
            &rt,
            &format!("{url}/flatviews"),
            DatasetKind::Drone,
            None,
            random_access,
        );
        assert_eq!(result.unwrap().tiles, 4);
        let views: Vec<(&str, &str)> = events
            .iter()
            .filter_map(|e| match e {
                FetchEvent::ProcessedView { view, stem, .. } => {
                    Some((view.as_str(), stem.as_str()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            views,
            [
                (
                    "bilinear-sharpening_filter-gaussian_denoising",
                    "DJI_0000_0_0"
                ),
                (
                    "bilinear-sharpening_filter-median_denoising",
                    "DJI_0000_0_0"
                )
            ]
        );
    }
}

/// `fetch --list` of the microscopy dataset in the record at `zenodo`, by byte ranges or streamed.
fn fetch_list(zenodo: &str, stream: bool, dir: &std::path::Path) -> std::process::Output {
    let mut args = vec![
        "fetch",
        "--dataset",
        "microscopy",
        "--list",
        "--zenodo",
        zenodo,
    ];
    if stream {
        args.push("--stream");
    }
    lens2logit(&args, dir)
}

#[test]
fn fetch_list_shows_files_and_what_each_archive_holds() {
    let (_rt, url) = server();
    let dir = tempfile::tempdir().unwrap();
    for (mode, stream) in [("nested", false), ("nested", true), ("toplevel", false)] {
        let out = fetch_list(&format!("{url}/{mode}"), stream, dir.path());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("record 5235536"), "{text}");
        assert!(text.contains("md5:"), "{text}");
        assert!(
            text.contains("12  tiles: microscopy at 100%")
                && text.contains("12  tiles: microscopy at 50%"),
            "{mode}: {text}"
        );
        if mode == "nested" {
            assert!(text.contains("archives inside"), "{text}");
            assert!(
                text.contains(if stream {
                    "as a stream"
                } else {
                    "by byte ranges"
                }),
                "{text}"
            );
        }
    }
    // nothing written without --out
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn fetch_drone_classification_keeps_the_paper_s_balanced_set_or_all_tiles() {
    let (_rt, url) = server();
    let dir = tempfile::tempdir().unwrap();
    let full = format!("{url}/full");

    lens2logit_ok(
        &[
            "fetch",
            "--dataset",
            "drone",
            "--task",
            "classification",
            "--zenodo",
            &full,
            "--out",
            "c",
        ],
        dir.path(),
    );
    // the paper's balanced set: per image one car tile, then one empty one
    let csv = std::fs::read_to_string(dir.path().join("c/labels.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(
        csv.contains("00_00000.tif,car") && csv.contains("00_00001.tif,no car"),
        "{csv}"
    );
    let all = [
        "fetch",
        "--dataset",
        "drone",
        "--task",
        "classification",
        "--drone-balance",
        "all",
        "--zenodo",
        &full,
        "--out",
        "a",
    ];
    let out = lens2logit(&all, dir.path());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("wrote 7 tiles (drone classification at 100 %, all tiles)"),
        "{said}"
    );
    let csv = std::fs::read_to_string(dir.path().join("a/labels.csv")).unwrap();
    assert_eq!(csv.lines().count(), 8, "{csv}");
    assert!(csv.contains("00_00002.tif,no car"), "{csv}");
    // the rule belongs to drone classification only
    let out = lens2logit(
        &[
            "fetch",
            "--dataset",
            "drone",
            "--drone-balance",
            "all",
            "--zenodo",
            &full,
            "--out",
            "s",
        ],
        dir.path(),
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("--task classification"),
        "{said}"
    );
}

/// Whether `text` names the bomb's entry and the lab's limit it inflates past.
fn names_the_bomb(text: &str) -> bool {
    text.contains(BOMB_ENTRY)
        && text.contains(&format!("inflates past {MAX_ENTRY_BYTES} bytes"))
        && text.contains("the lab's limit for one file")
}

#[test]
fn a_deflate_bomb_is_named_with_the_limit_and_the_fetch_leaves_the_folder_as_it_was() {
    let (_rt, url) = server();
    let dir = tempfile::tempdir().unwrap();
    let bomb = format!("{url}/bomb");
    let fetch = |zenodo: &str, stream: bool| {
        let mut args = vec![
            "fetch",
            "--dataset",
            "microscopy",
            "--zenodo",
            zenodo,
            "--out",
            "m",
        ];
        if stream {
            args.push("--stream");
        }
        lens2logit(&args, dir.path())
    };
    for stream in [false, true] {
        let out = fetch(&bomb, stream);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "stream {stream}: {stderr}");
        // named as it is skipped, and again in the final error, which says nothing usable came
        let (warnings, error) = stderr.split_once("error: ").expect("an error");
        assert!(names_the_bomb(warnings), "stream {stream}: {stderr}");
        assert!(
            names_the_bomb(error) && error.contains("no microscopy tiles"),
            "stream {stream}: {error}"
        );
        // no folder, no sibling it was written in
        assert_eq!(left_in(dir.path()), Vec::<String>::new(), "stream {stream}");
    }
    // a dataset fetched before stays as it was
    assert!(fetch(&format!("{url}/ok"), false).status.success());
    let before = left_in(&dir.path().join("m"));
    assert!(before.contains(&"labels.csv".to_string()), "{before:?}");
    assert!(!fetch(&bomb, true).status.success());
    assert_eq!(left_in(dir.path()), ["m"]);
    assert_eq!(left_in(&dir.path().join("m")), before);

    for stream in [false, true] {
        let out = fetch_list(&bomb, stream, dir.path());
        let report = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(names_the_bomb(&report), "stream {stream}: {report}");
    }
}
