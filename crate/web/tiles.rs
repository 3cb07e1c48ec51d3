//! The tiles the page works on and where they come from: the synthetic default, Zenodo streamed
//! (with the cache), and the user's own files.

use wasm_bindgen::prelude::*;

use super::camera::CameraSource;
use super::dng::load_dng_decoder;
use super::images::{LabelledImage, RgbaImage};
use super::{cache, js_error, to_js, Lab};
use lens2logit::data::cancel::CancelToken;
use lens2logit::data::discovery::{stem, DatasetKind};
use lens2logit::data::drone_balance::DroneBalance;
use lens2logit::data::fetch::{fetch, FetchRequest};
use lens2logit::data::inspect::inspect_record;
use lens2logit::data::synthetic;
use lens2logit::data::tile_store::{
    read_dropped_file, CacheIndex, CacheKeys, Notice, Streaming, TileStore,
};
use lens2logit::data::zenodo::ZenodoClient;
use lens2logit::data::Task;
use lens2logit::raw::is_dng_name;
use lens2logit::train::TileSet;
use lens2logit::viz;

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
#[serde(rename_all = "camelCase")]
struct ZenodoSource {
    base: String,
    record: String,
    dataset: String,
    intensity: u32,
    limit: Option<usize>,
    /// classification or segmentation (Raw-Drone offers both); the dataset's task when absent.
    task: Option<String>,
    seed: Option<u64>,
    /// Drone classification: `balanced` (the paper's set per image, when absent) or `all`.
    drone_balance: Option<String>,
}

/// The record to inspect.
#[derive(serde::Deserialize)]
struct RecordSource {
    base: String,
    record: String,
}

fn emit(callback: &js_sys::Function, event: &Notice) -> lens2logit::Result<()> {
    let value = super::to_js(event).map_err(|e| lens2logit::Error::invalid(format!("{e:?}")))?;
    callback
        .call1(&JsValue::NULL, &value)
        .map_err(|_| lens2logit::Error::invalid("the page's event handler failed"))?;
    Ok(())
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
        n: f64,
        seed: f64,
        size: f64,
    ) -> Result<usize, JsError> {
        use lens2logit::spec::limits::{SEED, SYNTHETIC_SIDE, SYNTHETIC_TILES};
        use lens2logit::train::options::whole;
        let task = Task::parse(task).map_err(js_error)?;
        let n = whole(&SYNTHETIC_TILES, n).map_err(js_error)? as usize;
        let size = whole(&SYNTHETIC_SIDE, size).map_err(js_error)? as usize;
        let seed = whole(&SEED, seed).map_err(js_error)?;
        let set = TileSet::synthetic(task, n, size, seed).map_err(js_error)?;
        self.set_camera_from(synthetic::camera(), CameraSource::Synthetic)?;
        *self.tiles.borrow_mut() = TileStore::synthetic(set);
        self.reset_params()?;
        Ok(self.tiles.borrow().tiles.len())
    }

    /// Streams a dataset from Zenodo (or a mirror): tiles are added and reported one by one;
    /// archives that fail their checksum are discarded with a reason; verified tiles are cached.
    /// `source` is {base, record, dataset, intensity, limit, task, seed, droneBalance}.
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
            task,
            seed,
            drone_balance,
        } = serde_wasm_bindgen::from_value(source)
            .map_err(|e| JsError::new(&format!("Zenodo settings: {e}")))?;
        let dataset = DatasetKind::parse(&dataset)
            .ok_or_else(|| JsError::new("the dataset is microscopy or drone"))?;
        let mut request = FetchRequest::new(dataset);
        if let Some(task) = task {
            request.task = Task::parse(&task).map_err(js_error)?;
        }
        if dataset == DatasetKind::Microscopy && request.task == Task::Segmentation {
            return Err(JsError::new(
                "Raw-Microscopy has no masks to segment: choose classification",
            ));
        }
        request.intensity = intensity;
        request.limit = limit;
        request.seed = seed.unwrap_or(0);
        if let Some(balance) = drone_balance {
            request.drone_balance = DroneBalance::parse(&balance).map_err(js_error)?;
        }
        let keys = CacheKeys::new(&record, &request);
        if dataset.has_camera_raws() {
            load_dng_decoder().await?;
        }
        self.set_camera_preset(dataset.name())?;
        *self.tiles.borrow_mut() =
            TileStore::for_dataset(request.task, zenodo_label(&record, &request));
        self.reset_params()?;
        let client = ZenodoClient::new(&base, &record);
        let mut streaming = Streaming::default();
        let result = fetch(&client, &request, &control.token, &mut |event| {
            let notice = streaming.apply(&mut self.tiles.borrow_mut(), event)?;
            notice.map_or(Ok(()), |n| emit(&on_event, &n))
        })
        .await;
        if let Err(e) = result {
            self.tiles.borrow_mut().drop_originals();
            return Err(js_error(e));
        }
        // only verified archives' tiles go to the cache, with the metadata to rebuild them
        let writes = streaming.cache_writes(&mut self.tiles.borrow_mut(), &keys);
        self.tiles.borrow_mut().drop_originals();
        let stored = match writes {
            Ok(writes) => cache::put_all(&writes).await,
            Err(e) => Err(e),
        };
        if let Err(e) = stored {
            let message = e.to_string();
            emit(&on_event, &Notice::Warning { message }).map_err(js_error)?;
        }
        Ok(self.tiles.borrow().tiles.len())
    }

    /// What a record holds, as `lens2logit fetch --list` prints it: its files, and each archive's
    /// entries grouped by what the lab makes of them (by byte ranges where the server allows).
    /// `source` is {base, record}; `on_progress` hears what is being read.
    #[wasm_bindgen(js_name = inspectRecord)]
    pub async fn inspect_record(
        &self,
        source: JsValue,
        control: &FetchControl,
        on_progress: js_sys::Function,
    ) -> Result<String, JsError> {
        let RecordSource { base, record } = serde_wasm_bindgen::from_value(source)
            .map_err(|e| JsError::new(&format!("record settings: {e}")))?;
        let client = ZenodoClient::new(&base, &record);
        inspect_record(&client, true, &control.token, &mut |what| {
            // progress only: a failing handler must not stop the inspection
            let _ = on_progress.call1(&JsValue::NULL, &JsValue::from_str(&what));
        })
        .await
        .map_err(js_error)
    }

    /// Loads a dataset from the cache; 0 when it holds none. `drone_balance` as
    /// [`Lab::stream_zenodo`]'s `droneBalance`.
    #[wasm_bindgen(js_name = loadCached)]
    pub async fn load_cached(
        &self,
        record: String,
        dataset: String,
        intensity: u32,
        task: Option<String>,
        drone_balance: Option<String>,
    ) -> Result<usize, JsError> {
        let dataset = DatasetKind::parse(&dataset)
            .ok_or_else(|| JsError::new("the dataset is microscopy or drone"))?;
        let mut request = FetchRequest::new(dataset);
        if let Some(task) = task {
            request.task = Task::parse(&task).map_err(js_error)?;
        }
        if let Some(balance) = drone_balance {
            request.drone_balance = DroneBalance::parse(&balance).map_err(js_error)?;
        }
        request.intensity = intensity;
        let task = request.task;
        let keys = CacheKeys::new(&record, &request);
        let Some(index) = cache::get(&keys.index()).await.map_err(js_error)? else {
            return Ok(0);
        };
        let index = CacheIndex::parse(&index).map_err(js_error)?;
        let mut tiles = Vec::new();
        for name in &index.files {
            let Some(bytes) = cache::get(&keys.tile(name)).await.map_err(js_error)? else {
                continue;
            };
            let mask = cache::get(&keys.mask(stem(name))).await.map_err(js_error)?;
            tiles.push((name.clone(), bytes, mask));
        }
        let store = TileStore::from_cache(task, zenodo_label(&record, &request), &index, tiles)
            .map_err(js_error)?;
        self.set_camera_preset(dataset.name())?;
        let n = store.tiles.len();
        *self.tiles.borrow_mut() = store;
        self.reset_params()?;
        Ok(n)
    }

    /// Empties the tile cache.
    #[wasm_bindgen(js_name = clearCache)]
    pub async fn clear_cache(&self) -> Result<(), JsError> {
        cache::clear().await.map_err(js_error)
    }

    /// Adds a dropped file: a PNG/TIFF/.npy tile, a zip of them (read as it streams), or a camera
    /// raw (DNG) cut into tiles, whose metadata becomes the camera.
    #[wasm_bindgen(js_name = loadFile)]
    pub async fn load_file(&self, name: String, bytes: Vec<u8>) -> Result<usize, JsError> {
        {
            let mut store = self.tiles.borrow_mut();
            if store.label != "my files" {
                *store = TileStore::new();
                store.label = "my files".into();
                self.ask_for_camera();
            }
        }
        if is_dng_name(&name) {
            load_dng_decoder().await?;
        }
        let dropped = read_dropped_file(&name, bytes).await.map_err(js_error)?;
        if let Some((camera, _)) = dropped.camera {
            self.set_camera_from(camera, CameraSource::Dng(name.clone()))?;
        }
        self.tiles.borrow_mut().tiles.extend(dropped.tiles);
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
        let t = store.tile(i).map_err(js_error)?;
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
        self.tiles.borrow_mut().select(i).map_err(js_error)
    }

    #[wasm_bindgen(js_name = maskOverlay)]
    pub fn mask_overlay(&self, i: usize) -> Result<super::RgbaImage, JsError> {
        let store = self.tiles.borrow();
        let t = store.tile(i).map_err(js_error)?;
        let mask = t
            .item
            .mask
            .as_ref()
            .ok_or_else(|| JsError::new("this tile has no mask"))?;
        Ok(viz::mask_overlay(mask, t.item.raw.width(), t.item.raw.height()).into())
    }
}

/// A Zenodo dataset as the lab log names it: the record and what was asked of it (the dataset,
/// the task, the intensity, and for drone classification the balancing rule).
fn zenodo_label(record: &str, request: &FetchRequest) -> String {
    format!("zenodo {record}: {}", request.describe())
}
