//! The tiles the page works on and where they come from: the synthetic default, Zenodo streamed
//! (with the cache), and the user's own files.

use std::collections::HashMap;

use futures_util::StreamExt;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::images::{LabelledImage, RgbaImage};
use super::{cache, js_error, to_js, Lab};
use crate::data::archive::{read_archive, ArchiveEvent};
use crate::data::discovery::{classify_loose, stem, DatasetKind, Entry};
use crate::data::fetch::{fetch, FetchEvent, FetchRequest};
use crate::data::http::CancelToken;
use crate::data::synthetic::{self, Task};
use crate::data::zenodo::ZenodoClient;
use crate::raw::{decode_samples, decode_tile, CameraParams, Samples};
use crate::train::{Item, TileSet};

/// A tile with where it came from.
pub struct StoredTile {
    pub item: Item,
    pub class: Option<String>,
    /// The archive it came from (to discard it if the archive fails its checksum).
    pub archive: Option<String>,
    /// The file as it was (for the cache).
    pub bytes: Option<Vec<u8>>,
}

impl StoredTile {
    /// A tile with no label, mask or archive (the chart, a dropped file).
    pub fn unlabelled(name: String, raw: crate::raw::RawTile) -> Self {
        Self {
            item: Item {
                name,
                raw,
                label: None,
                mask: None,
            },
            class: None,
            archive: None,
            bytes: None,
        }
    }
}

/// The page's current dataset.
pub struct TileStore {
    pub task: Task,
    pub source: String,
    pub tiles: Vec<StoredTile>,
    pub current: usize,
    /// The paper's own processed views (when the source has them), by tile stem.
    pub paper_views: HashMap<String, Vec<PaperViewFile>>,
}

/// One of the paper's processed views of a tile, as the archive holds it.
pub struct PaperViewFile {
    pub view: String,
    pub bytes: Vec<u8>,
    pub archive: String,
}

/// Memory the paper's processed views may take (a full dataset's are gigabytes).
const PAPER_VIEW_BYTES: usize = 64 << 20;

impl TileStore {
    pub fn new() -> Self {
        Self {
            task: Task::Classification,
            source: "none".into(),
            tiles: Vec::new(),
            current: 0,
            paper_views: HashMap::new(),
        }
    }

    /// Tile `i`, or an error for the page.
    pub fn tile(&self, i: usize) -> Result<&StoredTile, JsError> {
        self.tiles
            .get(i)
            .ok_or_else(|| JsError::new("no such tile"))
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

    /// An empty store for one of the paper's datasets.
    fn for_dataset(dataset: DatasetKind, source: String) -> Self {
        let task = if dataset == DatasetKind::Drone {
            Task::Segmentation
        } else {
            Task::Classification
        };
        Self {
            task,
            source,
            ..Self::new()
        }
    }

    /// Class names in a stable order and each tile's index into them.
    pub fn classes(&self) -> Vec<String> {
        let mut c: Vec<String> = self.tiles.iter().filter_map(|t| t.class.clone()).collect();
        c.sort();
        c.dedup();
        c
    }

    /// The tiles as a training set (classification needs labels, segmentation masks).
    pub fn tile_set(&self, camera: &CameraParams) -> crate::Result<TileSet> {
        let classes = match self.task {
            Task::Classification => self.classes(),
            Task::Segmentation => vec!["car".into()],
        };
        let items: Vec<Item> = self
            .tiles
            .iter()
            .filter(|t| match self.task {
                Task::Classification => t.class.is_some(),
                Task::Segmentation => t.item.mask.is_some(),
            })
            .map(|t| {
                let mut item = t.item.clone();
                item.label = t
                    .class
                    .as_ref()
                    .and_then(|c| classes.iter().position(|k| k == c));
                item
            })
            .collect();
        if items.len() < 4 {
            return Err(crate::Error::invalid(format!(
                "{} labelled tiles loaded; training needs at least 4",
                items.len()
            )));
        }
        let train = items.len() * 3 / 4;
        Ok(TileSet {
            task: self.task,
            classes,
            camera: camera.clone(),
            items,
            train,
        })
    }
}

/// Cancels a download started from the page.
#[wasm_bindgen]
#[derive(Default)]
pub struct FetchControl {
    token: CancelToken,
}

#[wasm_bindgen]
impl FetchControl {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.token.cancel();
    }
}

/// Where to stream from.
#[derive(serde::Deserialize)]
struct ZenodoSource {
    base: String,
    record: String,
    dataset: String,
    intensity: u32,
    limit: Option<usize>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum PageEvent<'a> {
    Tile {
        index: usize,
        name: &'a str,
        class: Option<&'a str>,
    },
    Progress {
        key: &'a str,
        read: u64,
        total: Option<u64>,
    },
    Archive {
        key: &'a str,
        size: u64,
        /// Read by byte ranges (only the entries needed) rather than streamed whole.
        ranged: bool,
    },
    Warning {
        message: &'a str,
    },
    Discard {
        key: &'a str,
        reason: &'a str,
        remaining: usize,
    },
    Labels {
        count: usize,
    },
}

fn emit(callback: &js_sys::Function, event: &PageEvent) -> crate::Result<()> {
    let value = super::to_js(event).map_err(|e| crate::Error::invalid(format!("{e:?}")))?;
    callback
        .call1(&JsValue::NULL, &value)
        .map_err(|_| crate::Error::invalid("the page's event handler failed"))?;
    Ok(())
}

fn cache_prefix(record: &str, dataset: DatasetKind, intensity: u32) -> String {
    format!("{record}/{}/{intensity}/", dataset.name())
}

#[wasm_bindgen]
impl Lab {
    /// The paper's own processed views of the current tile, when the source has them (a Zenodo
    /// archive's `processed_views`), in the order of their names.
    #[wasm_bindgen(js_name = paperViews)]
    pub fn paper_views(&self) -> Vec<LabelledImage> {
        let store = self.tiles.borrow();
        store
            .paper_views_of(store.current)
            .into_iter()
            .map(|(view, samples)| {
                let image = RgbaImage::new(samples.width, samples.height, samples.to_rgba8());
                LabelledImage::new(view, image)
            })
            .collect()
    }

    /// The synthetic default: `n` labelled tiles of `size` px, deterministic from `seed`.
    #[wasm_bindgen(js_name = loadSynthetic)]
    pub fn load_synthetic(
        &self,
        task: &str,
        n: usize,
        seed: u32,
        size: usize,
    ) -> Result<usize, JsError> {
        let task = match task {
            "segmentation" => Task::Segmentation,
            _ => Task::Classification,
        };
        let set = TileSet::synthetic(task, n, size, seed as u64).map_err(js_error)?;
        *self.camera.borrow_mut() = synthetic::camera();
        let mut store = self.tiles.borrow_mut();
        *store = TileStore::new();
        store.task = task;
        store.source = "synthetic".into();
        store.tiles = set
            .items
            .into_iter()
            .map(|item| StoredTile {
                class: item.label.map(|l| set.classes[l].clone()),
                item,
                archive: None,
                bytes: None,
            })
            .collect();
        drop(store);
        self.reset_params()?;
        Ok(self.tiles.borrow().tiles.len())
    }

    /// Streams a dataset from Zenodo (or a mirror): tiles are added and reported one by one;
    /// archives that fail their checksum are discarded with a reason; verified tiles are cached.
    /// `source` is {base, record, dataset, intensity, limit}.
    #[wasm_bindgen(js_name = streamZenodo)]
    pub async fn stream_zenodo(
        &self,
        source: JsValue,
        control: &FetchControl,
        on_event: js_sys::Function,
    ) -> Result<usize, JsError> {
        let ZenodoSource {
            base,
            record,
            dataset,
            intensity,
            limit,
        } = serde_wasm_bindgen::from_value(source)
            .map_err(|e| JsError::new(&format!("Zenodo settings: {e}")))?;
        let dataset = DatasetKind::parse(&dataset)
            .ok_or_else(|| JsError::new("the dataset is microscopy or drone"))?;
        *self.camera.borrow_mut() = CameraParams::preset(dataset.name()).map_err(js_error)?;
        *self.tiles.borrow_mut() =
            TileStore::for_dataset(dataset, format!("zenodo {base} {record}"));
        self.reset_params()?;
        let client = ZenodoClient::new(&base, &record);
        let request = FetchRequest {
            dataset,
            intensity,
            limit,
            random_access: true,
        };
        let mut archive = String::new();
        let mut labels: HashMap<String, String> = HashMap::new();
        let mut masks: HashMap<String, Vec<u8>> = HashMap::new();
        let mut verified: Vec<String> = Vec::new();
        let mut paper_views_full = false;
        let result = fetch(&client, &request, &control.token, &mut |event| {
            let mut store = self.tiles.borrow_mut();
            match event {
                FetchEvent::Archive {
                    key,
                    size,
                    random_access,
                } => {
                    archive = key.clone();
                    emit(
                        &on_event,
                        &PageEvent::Archive {
                            key: &key,
                            size,
                            ranged: random_access,
                        },
                    )
                }
                FetchEvent::Progress { key, read, total } => emit(
                    &on_event,
                    &PageEvent::Progress {
                        key: &key,
                        read,
                        total,
                    },
                ),
                FetchEvent::Tile {
                    file,
                    stem,
                    bytes,
                    label,
                } => {
                    let raw = decode_tile(&bytes, &file)?;
                    let mask = masks.get(&stem).and_then(|png| mask_from_png(png));
                    let class = label.or_else(|| labels.get(&file).cloned());
                    store.tiles.push(StoredTile {
                        item: Item {
                            name: file.clone(),
                            raw,
                            label: None,
                            mask,
                        },
                        class,
                        archive: Some(archive.clone()),
                        bytes: Some(bytes),
                    });
                    let t = store.tiles.last().expect("just pushed");
                    emit(
                        &on_event,
                        &PageEvent::Tile {
                            index: store.tiles.len() - 1,
                            name: &file,
                            class: t.class.as_deref(),
                        },
                    )
                }
                FetchEvent::Labels(found) => {
                    labels = found;
                    for t in &mut store.tiles {
                        t.class = labels.get(&t.item.name).cloned();
                    }
                    emit(
                        &on_event,
                        &PageEvent::Labels {
                            count: labels.len(),
                        },
                    )
                }
                FetchEvent::Mask { stem, bytes } => {
                    for t in store
                        .tiles
                        .iter_mut()
                        .filter(|t| t.item.name.starts_with(&format!("{stem}.")))
                    {
                        t.item.mask = mask_from_png(&bytes);
                    }
                    masks.insert(stem, bytes);
                    Ok(())
                }
                FetchEvent::Discard { key, reason } => {
                    store
                        .tiles
                        .retain(|t| t.archive.as_deref() != Some(key.as_str()));
                    for views in store.paper_views.values_mut() {
                        views.retain(|v| v.archive != key);
                    }
                    emit(
                        &on_event,
                        &PageEvent::Discard {
                            key: &key,
                            reason: &reason,
                            remaining: store.tiles.len(),
                        },
                    )
                }
                FetchEvent::Verified { key } => {
                    verified.push(key);
                    Ok(())
                }
                FetchEvent::Warning(message) => {
                    emit(&on_event, &PageEvent::Warning { message: &message })
                }
                FetchEvent::ProcessedView { view, stem, bytes } => {
                    let file = PaperViewFile {
                        view,
                        bytes,
                        archive: archive.clone(),
                    };
                    if store.add_paper_view(stem, file) || paper_views_full {
                        return Ok(());
                    }
                    paper_views_full = true;
                    emit(
                        &on_event,
                        &PageEvent::Warning {
                            message: &format!(
                                "the paper's processed views passed {} MB: the rest are not kept",
                                PAPER_VIEW_BYTES >> 20
                            ),
                        },
                    )
                }
                FetchEvent::Listing(_) => Ok(()),
            }
        })
        .await;
        result.map_err(js_error)?;
        // only verified archives' tiles go to the cache, with the metadata to rebuild them
        let prefix = cache_prefix(&record, dataset, intensity);
        let store_result = self.cache_tiles(&prefix, &verified, &masks, &labels).await;
        if let Err(e) = store_result {
            emit(
                &on_event,
                &PageEvent::Warning {
                    message: &e.to_string(),
                },
            )
            .map_err(js_error)?;
        }
        Ok(self.tiles.borrow().tiles.len())
    }

    async fn cache_tiles(
        &self,
        prefix: &str,
        verified: &[String],
        masks: &HashMap<String, Vec<u8>>,
        labels: &HashMap<String, String>,
    ) -> crate::Result<()> {
        let files: Vec<(String, Vec<u8>)> = self
            .tiles
            .borrow()
            .tiles
            .iter()
            .filter(|t| t.archive.as_ref().is_some_and(|a| verified.contains(a)))
            .filter_map(|t| Some((t.item.name.clone(), t.bytes.clone()?)))
            .collect();
        if files.is_empty() {
            return Ok(());
        }
        for (name, bytes) in &files {
            cache::put(&format!("{prefix}tile/{name}"), bytes).await?;
            let stem = stem(name);
            if let Some(mask) = masks.get(stem) {
                cache::put(&format!("{prefix}mask/{stem}"), mask).await?;
            }
        }
        // the index goes last: an interrupted write leaves no index, so nothing half-written loads
        let index = serde_json::json!({ "files": files.iter().map(|(n, _)| n).collect::<Vec<_>>(), "labels": labels });
        cache::put(&format!("{prefix}index.json"), index.to_string().as_bytes()).await
    }

    /// Loads a dataset from the cache; 0 when it holds none.
    #[wasm_bindgen(js_name = loadCached)]
    pub async fn load_cached(
        &self,
        record: String,
        dataset: String,
        intensity: u32,
    ) -> Result<usize, JsError> {
        let dataset = DatasetKind::parse(&dataset)
            .ok_or_else(|| JsError::new("the dataset is microscopy or drone"))?;
        let prefix = cache_prefix(&record, dataset, intensity);
        let Some(index) = cache::get(&format!("{prefix}index.json"))
            .await
            .map_err(js_error)?
        else {
            return Ok(0);
        };
        let index: serde_json::Value =
            serde_json::from_slice(&index).map_err(|e| JsError::new(&e.to_string()))?;
        let labels: HashMap<String, String> =
            serde_json::from_value(index["labels"].clone()).unwrap_or_default();
        let files: Vec<String> = serde_json::from_value(index["files"].clone()).unwrap_or_default();
        let mut tiles = Vec::new();
        for name in files {
            let Some(bytes) = cache::get(&format!("{prefix}tile/{name}"))
                .await
                .map_err(js_error)?
            else {
                continue;
            };
            let stem = stem(&name).to_string();
            let mask = cache::get(&format!("{prefix}mask/{stem}"))
                .await
                .map_err(js_error)?;
            tiles.push(StoredTile {
                item: Item {
                    raw: decode_tile(&bytes, &name).map_err(js_error)?,
                    name: name.clone(),
                    label: None,
                    mask: mask.as_deref().and_then(mask_from_png),
                },
                class: labels.get(&name).cloned(),
                archive: None,
                bytes: None,
            });
        }
        *self.camera.borrow_mut() = CameraParams::preset(dataset.name()).map_err(js_error)?;
        let n = tiles.len();
        *self.tiles.borrow_mut() = TileStore {
            tiles,
            ..TileStore::for_dataset(dataset, format!("cache {record}"))
        };
        self.reset_params()?;
        Ok(n)
    }

    /// Empties the tile cache.
    #[wasm_bindgen(js_name = clearCache)]
    pub async fn clear_cache(&self) -> Result<(), JsError> {
        cache::clear().await.map_err(js_error)
    }

    /// Adds a dropped file: a PNG/TIFF/.npy tile, or a zip of them (read as it streams).
    #[wasm_bindgen(js_name = loadFile)]
    pub async fn load_file(&self, name: String, bytes: Vec<u8>) -> Result<usize, JsError> {
        {
            let mut store = self.tiles.borrow_mut();
            if store.source != "local files" {
                *store = TileStore::new();
                store.source = "local files".into();
            }
        }
        if !bytes.starts_with(b"PK") {
            let raw = decode_tile(&bytes, &name).map_err(js_error)?;
            self.tiles
                .borrow_mut()
                .tiles
                .push(StoredTile::unlabelled(name, raw));
            return Ok(self.tiles.borrow().tiles.len());
        }
        let chunks = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes)]).boxed_local();
        let mut failures = Vec::new();
        read_archive(
            &name,
            chunks,
            None,
            None,
            &CancelToken::default(),
            &classify_loose,
            &mut |event| {
                if let ArchiveEvent::Entry {
                    entry: Entry::Tile { file, .. } | Entry::LooseTile { file },
                    bytes,
                    ..
                } = event
                {
                    match decode_tile(&bytes, &file) {
                        Ok(raw) => self
                            .tiles
                            .borrow_mut()
                            .tiles
                            .push(StoredTile::unlabelled(file, raw)),
                        Err(e) => failures.push(e.to_string()),
                    }
                }
                Ok(())
            },
        )
        .await
        .map_err(js_error)?;
        if self.tiles.borrow().tiles.is_empty() {
            return Err(JsError::new(&match failures.first() {
                Some(first) => format!("{name}: no tile could be read ({first})"),
                None => format!("{name} holds no PNG, TIFF or .npy tiles"),
            }));
        }
        Ok(self.tiles.borrow().tiles.len())
    }

    #[wasm_bindgen(js_name = tileCount)]
    pub fn tile_count(&self) -> usize {
        self.tiles.borrow().tiles.len()
    }

    /// {name, class, hasMask, width, height} of tile `i`.
    #[wasm_bindgen(js_name = tileInfo)]
    pub fn tile_info(&self, i: usize) -> Result<JsValue, JsError> {
        let store = self.tiles.borrow();
        let t = store.tile(i)?;
        let info = serde_json::json!({
            "name": t.item.name, "class": t.class, "hasMask": t.item.mask.is_some(),
            "width": t.item.raw.width(), "height": t.item.raw.height(),
        });
        to_js(&info)
    }

    /// The task of the loaded dataset: classification or segmentation.
    #[wasm_bindgen(getter)]
    pub fn task(&self) -> String {
        self.tiles.borrow().task.name().into()
    }

    /// Makes tile `i` the current one.
    pub fn select(&self, i: usize) -> Result<(), JsError> {
        let mut store = self.tiles.borrow_mut();
        if i >= store.tiles.len() {
            return Err(JsError::new(&format!(
                "tile {i} is not loaded ({} are)",
                store.tiles.len()
            )));
        }
        store.current = i;
        Ok(())
    }

    /// Tile `i`'s car mask as a translucent red overlay.
    #[wasm_bindgen(js_name = maskOverlay)]
    pub fn mask_overlay(&self, i: usize) -> Result<super::RgbaImage, JsError> {
        let store = self.tiles.borrow();
        let t = store.tile(i)?;
        let mask = t
            .item
            .mask
            .as_ref()
            .ok_or_else(|| JsError::new("this tile has no mask"))?;
        let rgba = mask
            .iter()
            .flat_map(|&m| {
                if m > 0 {
                    [230, 30, 30, 140]
                } else {
                    [0, 0, 0, 0]
                }
            })
            .collect();
        Ok(super::RgbaImage::new(
            t.item.raw.width(),
            t.item.raw.height(),
            rgba,
        ))
    }
}

/// A mask PNG (car > 0) as {0, 1}.
fn mask_from_png(bytes: &[u8]) -> Option<Vec<u8>> {
    let tile = decode_tile(bytes, "mask").ok()?;
    Some(tile.data().iter().map(|&v| u8::from(v > 0.0)).collect())
}
