//! The tiles the lab works on and where they came from: what a Zenodo stream's events make of
//! them (tiles, labels and masks paired by name, archives discarded when their checksum fails,
//! the paper's processed views within a budget), what of them goes to the browser's cache and how
//! a cached dataset comes back. Platform-free: the page's facade only carries the notices to the
//! page and the bytes to and from its storage.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::tiles::{Item, TileSet};
use crate::data::discovery::stem;
use crate::data::fetch::{FetchEvent, FetchRequest};
use crate::data::Task;
use crate::raw::{decode_lab_tile, decode_mask, decode_samples, CameraParams, Samples};
use crate::{Error, Result};

/// A tile with where it came from.
pub struct StoredTile {
    pub item: Item,
    pub class: Option<String>,
    /// The archive it came from (to discard it if the archive fails its checksum).
    pub archive: Option<String>,
    /// The file as it was, until the cache has it (then dropped: the tile lives on decoded).
    pub bytes: Option<Vec<u8>>,
}

impl StoredTile {
    /// A tile with no label, mask or archive (the chart, a dropped file).
    pub fn unlabelled(name: String, raw: crate::raw::RawTile) -> Self {
        Self {
            item: Item::plain(name, raw, None),
            class: None,
            archive: None,
            bytes: None,
        }
    }
}

/// One of the paper's processed views of a tile, as the archive holds it.
pub struct PaperViewFile {
    pub view: String,
    pub bytes: Vec<u8>,
    pub archive: String,
}

/// Memory the paper's processed views may take (a full dataset's are gigabytes).
pub const PAPER_VIEW_BYTES: usize = 64 << 20;

/// The lab's current dataset.
pub struct TileStore {
    pub task: Task,
    /// The tiles' source as the lab log names it.
    pub label: String,
    pub tiles: Vec<StoredTile>,
    pub current: usize,
    /// The paper's own processed views (when the source has them), by tile stem.
    pub paper_views: HashMap<String, Vec<PaperViewFile>>,
}

impl Default for TileStore {
    fn default() -> Self {
        Self::new()
    }
}

impl TileStore {
    pub fn new() -> Self {
        Self {
            task: Task::Classification,
            label: "none".into(),
            tiles: Vec::new(),
            current: 0,
            paper_views: HashMap::new(),
        }
    }

    /// An empty store for one of the paper's datasets and a task.
    pub fn for_dataset(task: Task, label: String) -> Self {
        Self {
            task,
            label,
            ..Self::new()
        }
    }

    /// A synthetic tile set as the lab's dataset.
    pub fn synthetic(set: TileSet) -> Self {
        let tiles = set
            .items
            .into_iter()
            .map(|item| StoredTile {
                class: item.label.map(|l| set.classes[l].clone()),
                item,
                archive: None,
                bytes: None,
            })
            .collect();
        Self {
            task: set.task,
            label: set.label,
            tiles,
            ..Self::new()
        }
    }

    /// Makes tile `i` the current one.
    pub fn select(&mut self, i: usize) -> Result<()> {
        self.tile(i)?;
        self.current = i;
        Ok(())
    }

    /// Tile `i`, or an error naming it.
    pub fn tile(&self, i: usize) -> Result<&StoredTile> {
        self.tiles.get(i).ok_or_else(|| {
            Error::invalid(format!(
                "no tile {i}: {} tiles are loaded",
                self.tiles.len()
            ))
        })
    }

    /// Keeps a processed view of the paper's unless their memory is spent; false when dropped.
    fn add_paper_view(&mut self, stem: String, file: PaperViewFile) -> bool {
        let used: usize = self
            .paper_views
            .values()
            .flatten()
            .map(|v| v.bytes.len())
            .sum();
        if used + file.bytes.len() > PAPER_VIEW_BYTES {
            return false;
        }
        self.paper_views.entry(stem).or_default().push(file);
        true
    }

    /// Drops what the archive `key` delivered (it failed its check).
    fn discard(&mut self, key: &str) {
        self.tiles.retain(|t| t.archive.as_deref() != Some(key));
        for views in self.paper_views.values_mut() {
            views.retain(|v| v.archive != key);
        }
    }

    /// The paper's processed views of tile `i` that decode, by view name.
    pub fn paper_views_of(&self, i: usize) -> Vec<(String, Samples)> {
        let Some(tile) = self.tiles.get(i) else {
            return Vec::new();
        };
        let mut views: Vec<(String, Samples)> = self
            .paper_views
            .get(stem(&tile.item.name))
            .into_iter()
            .flatten()
            // a file no decoder reads is left out rather than failing the tile
            .filter_map(|v| Some((v.view.clone(), decode_samples(&v.bytes, &v.view).ok()?)))
            .collect();
        views.sort_by(|a, b| a.0.cmp(&b.0));
        views
    }

    /// The tiles as a training set (classification needs labels, segmentation masks).
    pub fn tile_set(&self, camera: &CameraParams) -> Result<TileSet> {
        let tiles = self
            .tiles
            .iter()
            .map(|t| (t.item.clone(), t.class.clone()))
            .collect();
        let mut set = TileSet::labelled(self.task, camera.clone(), tiles)?;
        set.label = self.label.clone();
        Ok(set)
    }

    /// A dataset back from the cache, labelled from its index.
    pub fn from_cache(
        task: Task,
        label: String,
        index: &CacheIndex,
        tiles: Vec<CachedTile>,
    ) -> Result<Self> {
        let mut store = Self::for_dataset(task, label);
        for (name, bytes, mask) in tiles {
            store.tiles.push(StoredTile {
                item: Item::plain(
                    name.clone(),
                    decode_lab_tile(&bytes, &name)?,
                    mask.and_then(|m| decode_mask(&m, &name).ok()),
                ),
                class: index.labels.get(&name).cloned(),
                archive: None,
                bytes: None,
            });
        }
        Ok(store)
    }

    /// Forgets the tiles' file bytes (kept only until the cache has them): a tile is kept once,
    /// decoded.
    pub fn drop_originals(&mut self) {
        for tile in &mut self.tiles {
            tile.bytes = None;
        }
    }
}

/// What the page hears of a stream (JSON with a `type`).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Notice {
    Tile {
        index: usize,
        name: String,
        class: Option<String>,
    },
    Progress {
        key: String,
        read: u64,
        total: Option<u64>,
    },
    Archive {
        key: String,
        size: u64,
        /// Read by byte ranges (only the entries needed) rather than streamed whole.
        ranged: bool,
    },
    Warning {
        message: String,
    },
    Discard {
        key: String,
        reason: String,
        remaining: usize,
    },
    Labels {
        count: usize,
    },
    /// What discovery made of a file of the record.
    Layout {
        key: String,
        lines: Vec<String>,
    },
    /// How a limited fetch drew its sample.
    Sample {
        message: String,
    },
}

/// One stream's bookkeeping: the archive being read, the labels and masks found so far (they
/// may come before or after their tiles), the archives whose checksums held.
#[derive(Default)]
pub struct Streaming {
    archive: String,
    labels: HashMap<String, String>,
    masks: HashMap<String, Vec<u8>>,
    verified: Vec<String>,
    paper_views_full: bool,
}

/// Where a dataset's files sit in the browser's cache, under one prefix per record, dataset, task
/// (for drone classification with the rule that kept its tiles) and intensity. The index goes
/// last: an interrupted write leaves no index, so nothing half-written loads.
pub struct CacheKeys {
    prefix: String,
}

impl CacheKeys {
    pub fn new(record: &str, request: &FetchRequest) -> Self {
        let mut task = request.task.name().to_string();
        if request.drone_classes() {
            task = format!("{task}-{}", request.drone_balance.name());
        }
        Self {
            prefix: format!(
                "{record}/{}/{task}/{}/",
                request.dataset.name(),
                request.intensity
            ),
        }
    }

    pub fn tile(&self, name: &str) -> String {
        format!("{}tile/{name}", self.prefix)
    }

    pub fn mask(&self, stem: &str) -> String {
        format!("{}mask/{stem}", self.prefix)
    }

    pub fn index(&self) -> String {
        format!("{}index.json", self.prefix)
    }
}

/// The cache's index of a dataset: its tiles' file names and their classes.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CacheIndex {
    pub files: Vec<String>,
    #[serde(default)]
    pub labels: HashMap<String, String>,
}

impl CacheIndex {
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid(format!("the cached dataset's index is damaged: {e}")))
    }
}

/// What a finished stream leaves for the cache: (key, bytes) in write order, index last.
pub type CacheWrites = Vec<(String, Vec<u8>)>;

impl Streaming {
    /// Applies one event to `store`; what the page should hear of it, if anything.
    pub fn apply(&mut self, store: &mut TileStore, event: FetchEvent) -> Result<Option<Notice>> {
        Ok(match event {
            FetchEvent::Archive {
                key,
                size,
                random_access,
            } => {
                self.archive = key.clone();
                Some(Notice::Archive {
                    key,
                    size,
                    ranged: random_access,
                })
            }
            FetchEvent::Progress { key, read, total } => {
                Some(Notice::Progress { key, read, total })
            }
            FetchEvent::Tile {
                file,
                stem,
                bytes,
                label,
            } => Some(self.tile(store, file, &stem, bytes, label)?),
            FetchEvent::Labels(found) => Some(self.labels(store, found)),
            FetchEvent::Mask { stem, bytes } => {
                self.mask(store, stem, bytes);
                None
            }
            FetchEvent::Discard { key, reason } => {
                store.discard(&key);
                Some(Notice::Discard {
                    key,
                    reason,
                    remaining: store.tiles.len(),
                })
            }
            FetchEvent::Verified { key } => {
                self.verified.push(key);
                None
            }
            FetchEvent::Warning(message) => Some(Notice::Warning { message }),
            FetchEvent::ProcessedView { view, stem, bytes } => {
                self.paper_view(store, view, stem, bytes)
            }
            FetchEvent::Layout { key, lines } => Some(Notice::Layout { key, lines }),
            FetchEvent::Sample(message) => Some(Notice::Sample { message }),
            FetchEvent::Listing(_) => None,
        })
    }

    /// A tile decoded into the store, with its mask if it came first and its class.
    fn tile(
        &mut self,
        store: &mut TileStore,
        file: String,
        stem: &str,
        bytes: Vec<u8>,
        label: Option<String>,
    ) -> Result<Notice> {
        let raw = decode_lab_tile(&bytes, &file)?;
        let mask = self
            .masks
            .get(stem)
            .and_then(|png| decode_mask(png, stem).ok());
        // a class from the fetch (Raw-Drone's, from masks) is cached with the labels
        if let Some(class) = &label {
            self.labels.insert(file.clone(), class.clone());
        }
        let class = label.or_else(|| self.labels.get(&file).cloned());
        store.tiles.push(StoredTile {
            item: Item::plain(file.clone(), raw, mask),
            class: class.clone(),
            archive: Some(self.archive.clone()),
            bytes: Some(bytes),
        });
        Ok(Notice::Tile {
            index: store.tiles.len() - 1,
            name: file,
            class,
        })
    }

    /// Labels found: they class the tiles they name, those stored and those to come.
    fn labels(&mut self, store: &mut TileStore, found: HashMap<String, String>) -> Notice {
        self.labels.extend(found);
        // a tile's class from its path stays where the labels do not name it
        for t in &mut store.tiles {
            if let Some(class) = self.labels.get(&t.item.name) {
                t.class = Some(class.clone());
            }
        }
        Notice::Labels {
            count: self.labels.len(),
        }
    }

    /// A mask: its tile's, whether the tile is stored already or still to come.
    fn mask(&mut self, store: &mut TileStore, stem: String, bytes: Vec<u8>) {
        let prefix = format!("{stem}.");
        for t in store
            .tiles
            .iter_mut()
            .filter(|t| t.item.name.starts_with(&prefix))
        {
            t.item.mask = decode_mask(&bytes, &stem).ok();
        }
        self.masks.insert(stem, bytes);
    }

    /// One of the paper's processed views, kept while they fit; a warning the first time not.
    fn paper_view(
        &mut self,
        store: &mut TileStore,
        view: String,
        stem: String,
        bytes: Vec<u8>,
    ) -> Option<Notice> {
        let file = PaperViewFile {
            view,
            bytes,
            archive: self.archive.clone(),
        };
        if store.add_paper_view(stem, file) || self.paper_views_full {
            return None;
        }
        self.paper_views_full = true;
        Some(Notice::Warning {
            message: format!(
                "the paper's processed views passed {} MB: the rest are not kept",
                PAPER_VIEW_BYTES >> 20
            ),
        })
    }

    /// The writes that cache the verified archives' tiles (their file bytes taken from the store)
    /// with their masks, and the index last; empty when nothing verified.
    pub fn cache_writes(&self, store: &mut TileStore, keys: &CacheKeys) -> Result<CacheWrites> {
        let files: Vec<(String, Vec<u8>)> = store
            .tiles
            .iter_mut()
            .filter(|t| {
                t.archive
                    .as_ref()
                    .is_some_and(|a| self.verified.contains(a))
            })
            .filter_map(|t| Some((t.item.name.clone(), t.bytes.take()?)))
            .collect();
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let index = CacheIndex {
            files: files.iter().map(|(n, _)| n.clone()).collect(),
            labels: self.labels.clone(),
        };
        let mut writes = Vec::new();
        for (name, bytes) in files {
            let stem = stem(&name).to_string();
            writes.push((keys.tile(&name), bytes));
            if let Some(mask) = self.masks.get(&stem) {
                writes.push((keys.mask(&stem), mask.clone()));
            }
        }
        let index = serde_json::to_vec(&index)
            .map_err(|e| Error::invalid(format!("writing the cache index failed: {e}")))?;
        writes.push((keys.index(), index));
        Ok(writes)
    }
}

/// A cached tile: its file name, its bytes and its mask's where cached.
pub type CachedTile = (String, Vec<u8>, Option<Vec<u8>>);

/// The tiles of a file the user dropped: one tile (PNG, TIFF or .npy), a camera raw (DNG: its
/// tiles, and its camera from its metadata), or a zip of tiles, read in memory; entries that fail
/// to decode are skipped, and a file with no readable tile is an error naming the first failure.
pub async fn read_dropped_file(name: &str, bytes: Vec<u8>) -> Result<Dropped> {
    use crate::data::archive::{read_archive, ArchiveEvent};
    use crate::data::cancel::CancelToken;
    use crate::data::discovery::{classify_loose, Entry};
    use futures_util::StreamExt;

    if crate::raw::is_dng_name(name) {
        return dng_tiles(name, &bytes);
    }
    if !bytes.starts_with(b"PK") {
        let raw = decode_lab_tile(&bytes, name)?;
        return Ok(Dropped {
            tiles: vec![StoredTile::unlabelled(name.to_string(), raw)],
            camera: None,
        });
    }
    let chunks = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes)]).boxed_local();
    let mut tiles = Vec::new();
    let mut failures = Vec::new();
    read_archive(
        name,
        chunks,
        None,
        None,
        &CancelToken::default(),
        &classify_loose,
        &mut |event| {
            if let ArchiveEvent::Warning(warning) = &event {
                failures.push(warning.clone());
            }
            if let ArchiveEvent::Entry {
                entry: Entry::Tile { file, .. } | Entry::LooseTile { file },
                bytes,
                ..
            } = event
            {
                match decode_lab_tile(&bytes, &file) {
                    Ok(raw) => tiles.push(StoredTile::unlabelled(file, raw)),
                    Err(e) => failures.push(e.to_string()),
                }
            }
            Ok(())
        },
    )
    .await?;
    if tiles.is_empty() {
        return Err(Error::invalid(match failures.first() {
            Some(first) => format!("{name}: no tile could be read ({first})"),
            None => format!("{name} holds no PNG, TIFF or .npy tiles"),
        }));
    }
    Ok(Dropped {
        tiles,
        camera: None,
    })
}

/// What a dropped file gives: tiles, and a camera when the file describes its own.
pub struct Dropped {
    pub tiles: Vec<StoredTile>,
    /// The camera from a DNG's metadata, with a line describing the file.
    pub camera: Option<(CameraParams, String)>,
}

/// A DNG cut into tiles ([`super::tiles::photo_tiles`]), each tile's class the photo it came
/// from, so tiles of two or more photos train a session.
fn dng_tiles(name: &str, bytes: &[u8]) -> Result<Dropped> {
    let dng = crate::raw::decode_dng(bytes, name)?;
    let tiles = super::tiles::photo_tiles(&dng.mosaic, stem(name), 0, None)?
        .into_iter()
        .map(|(item, class)| StoredTile {
            item,
            class,
            archive: None,
            bytes: None,
        })
        .collect();
    Ok(Dropped {
        tiles,
        camera: Some((dng.camera, dng.summary)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::discovery::DatasetKind;

    fn tile(file: &str, label: Option<&str>) -> FetchEvent {
        let values = vec![0.25f32; 16 * 16];
        FetchEvent::Tile {
            file: file.into(),
            stem: stem(file).into(),
            bytes: crate::codecs::tiff_gray16(16, 16, &values).unwrap(),
            label: label.map(String::from),
        }
    }

    fn archive(key: &str) -> FetchEvent {
        FetchEvent::Archive {
            key: key.into(),
            size: 1,
            random_access: false,
        }
    }

    #[test]
    fn labels_and_masks_meet_their_tiles_in_any_order_and_a_failed_archive_leaves() {
        let mut store = TileStore::for_dataset(Task::Segmentation, "test".into());
        let mut s = Streaming::default();
        let mask = crate::codecs::png8(16, 16, 1, &[255u8; 256]).unwrap();
        s.apply(&mut store, archive("a.zip")).unwrap();
        // a mask before its tile, one after
        s.apply(
            &mut store,
            FetchEvent::Mask {
                stem: "t1".into(),
                bytes: mask.clone(),
            },
        )
        .unwrap();
        let notice = s.apply(&mut store, tile("t1.tif", None)).unwrap();
        assert!(matches!(notice, Some(Notice::Tile { index: 0, .. })));
        s.apply(&mut store, tile("t2.tif", None)).unwrap();
        s.apply(
            &mut store,
            FetchEvent::Mask {
                stem: "t2".into(),
                bytes: mask,
            },
        )
        .unwrap();
        assert!(store
            .tiles
            .iter()
            .all(|t| t.item.mask.as_ref().is_some_and(|m| m[0] == 1)));
        s.apply(
            &mut store,
            FetchEvent::Verified {
                key: "a.zip".into(),
            },
        )
        .unwrap();
        // a second archive fails its checksum: its tiles leave, the first's stay
        s.apply(&mut store, archive("b.zip")).unwrap();
        s.apply(&mut store, tile("t3.tif", None)).unwrap();
        let notice = s
            .apply(
                &mut store,
                FetchEvent::Discard {
                    key: "b.zip".into(),
                    reason: "MD5".into(),
                },
            )
            .unwrap();
        assert!(matches!(notice, Some(Notice::Discard { remaining: 2, .. })));

        // the verified archive's tiles and masks go to the cache, the index last, and come back
        let keys = CacheKeys::new("5235536", &FetchRequest::new(DatasetKind::Drone));
        let writes = s.cache_writes(&mut store, &keys).unwrap();
        let names: Vec<&str> = writes.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "5235536/drone/segmentation/100/tile/t1.tif",
                "5235536/drone/segmentation/100/mask/t1",
                "5235536/drone/segmentation/100/tile/t2.tif",
                "5235536/drone/segmentation/100/mask/t2",
                "5235536/drone/segmentation/100/index.json"
            ]
        );
        assert!(store.tiles.iter().all(|t| t.bytes.is_none()));
        let index = CacheIndex::parse(&writes[4].1).unwrap();
        let cached = vec![(
            "t1.tif".to_string(),
            writes[0].1.clone(),
            Some(writes[1].1.clone()),
        )];
        let back =
            TileStore::from_cache(Task::Segmentation, "cache".into(), &index, cached).unwrap();
        assert_eq!(back.tiles.len(), 1);
        assert!(back.tiles[0].item.mask.is_some());
        assert!(CacheIndex::parse(b"{").is_err());
    }

    #[test]
    fn labels_found_after_the_tiles_label_them() {
        let mut store = TileStore::for_dataset(Task::Classification, "test".into());
        let mut s = Streaming::default();
        s.apply(&mut store, tile("a.tif", None)).unwrap();
        s.apply(&mut store, tile("b.tif", Some("LYT"))).unwrap();
        let labels = HashMap::from([("a.tif".to_string(), "NGS".to_string())]);
        s.apply(&mut store, FetchEvent::Labels(labels)).unwrap();
        assert_eq!(store.tiles[0].class.as_deref(), Some("NGS"));
        assert_eq!(store.tiles[1].class.as_deref(), Some("LYT"));
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn a_dropped_zip_gives_its_readable_tiles_and_a_file_without_any_says_why() {
        use std::io::Write;
        let tiff = crate::codecs::tiff_gray16(16, 16, &[0.25; 256]).unwrap();
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default();
        for (name, bytes) in [
            ("a.tiff", tiff.as_slice()),
            ("b.tiff", &tiff[..40]),
            ("notes.txt", b"x"),
        ] {
            zip.start_file(name, options).unwrap();
            zip.write_all(bytes).unwrap();
        }
        let bytes = zip.finish().unwrap().into_inner();
        let tiles = pollster::block_on(read_dropped_file("set.zip", bytes))
            .unwrap()
            .tiles;
        let names: Vec<&str> = tiles.iter().map(|t| t.item.name.as_str()).collect();
        assert_eq!(names, ["a.tiff"]);

        let one = pollster::block_on(read_dropped_file("a.tiff", tiff.clone())).unwrap();
        assert!(one.camera.is_none());
        assert_eq!(one.tiles[0].item.raw.width(), 16);
        let e = pollster::block_on(read_dropped_file("b.tiff", tiff[..40].to_vec()));
        assert!(e.is_err());

        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        zip.start_file("b.tiff", options).unwrap();
        zip.write_all(&tiff[..40]).unwrap();
        let bytes = zip.finish().unwrap().into_inner();
        let e = pollster::block_on(read_dropped_file("broken.zip", bytes))
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .starts_with("broken.zip: no tile could be read ("),
            "{e}"
        );
    }

    /// The two drone classification sets are cached apart (a cached set is the rule's own).
    #[test]
    fn drone_classification_sets_are_cached_under_their_rule() {
        let mut request = FetchRequest::new(DatasetKind::Drone);
        request.task = Task::Classification;
        let balanced = CacheKeys::new("5235536", &request).index();
        request.drone_balance = crate::data::drone_balance::DroneBalance::All;
        let all = CacheKeys::new("5235536", &request).index();
        assert_eq!(
            balanced,
            "5235536/drone/classification-balanced/100/index.json"
        );
        assert_eq!(all, "5235536/drone/classification-all/100/index.json");
        assert_eq!(
            request.describe(),
            "drone classification at 100 %, all tiles"
        );
    }
}
