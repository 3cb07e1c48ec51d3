//! Fine-tuning sessions in the worker: the training engine stepped from an async loop that
//! yields to the event loop after every step, so pause, resume and cancel take effect at once
//! and the page keeps receiving progress.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde::Deserialize;
use wasm_bindgen::prelude::*;

use super::runs::{snapshot_image, snapshot_output};
use super::{js_error, to_js, Lab, RgbaImage};
use lens2logit::gpu::Gpu;
use lens2logit::isp::static_pipeline::View;
use lens2logit::model::save_weights;
use lens2logit::runs::{Run, RunSource};
use lens2logit::train::backend::Choice;
use lens2logit::train::timeline::timeline_gif;
use lens2logit::train::{DeviceChoice, Session, Summary, TileSet, TrainOptions};

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Paused,
    Cancelled,
}

/// Pause, resume and cancel for a running session (a separate object, so the page can call it
/// while the session's loop holds the trainer).
#[wasm_bindgen]
pub struct TrainControl {
    state: Rc<Cell<State>>,
}

impl Default for TrainControl {
    fn default() -> Self {
        Self {
            state: Rc::new(Cell::new(State::Running)),
        }
    }
}

#[wasm_bindgen]
impl TrainControl {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Self {
        Self::default()
    }

    pub fn pause(&self) {
        if self.state.get() == State::Running {
            self.state.set(State::Paused);
        }
    }

    pub fn resume(&self) {
        if self.state.get() == State::Paused {
            self.state.set(State::Running);
        }
    }

    pub fn cancel(&self) {
        self.state.set(State::Cancelled);
    }
}

/// What the page sets up a session with (camelCase in JS): the session's settings and the
/// device to train on.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Options {
    #[serde(flatten)]
    session: TrainOptions,
    /// auto (the faster of the lab's GPU and the CPU, measured), cpu or gpu.
    backend: Option<String>,
    /// What auto measured in earlier sessions, by [`device_key`]: "cpu" or "gpu".
    #[serde(default)]
    remembered_devices: std::collections::BTreeMap<String, String>,
}

/// What the page remembers auto's measurement under: the adapter, the model, the batch and the
/// tile size.
fn device_key(gpu: &Gpu, set: &TileSet, config: &lens2logit::train::TrainConfig) -> String {
    let (h, w) = set
        .items
        .first()
        .map_or((0, 0), |t| (t.raw.height(), t.raw.width()));
    format!(
        "{}|{}|batch {}|{h}x{w}",
        gpu.label(),
        config.model.name(),
        config.batch
    )
}

/// A session the page drives. A step takes the session out of its cell while it awaits the
/// device, so a page call meanwhile gets a "busy" error, never a double borrow.
#[wasm_bindgen]
pub struct Trainer {
    session: RefCell<Option<Session>>,
    sent_snapshots: Cell<usize>,
    /// The device asked for and the lab's GPU, until [`Trainer::prepare`] chooses.
    pending: RefCell<Option<(DeviceChoice, Option<Rc<Gpu>>)>>,
    /// Where auto's choice is remembered (with an adapter).
    device_key: Option<String>,
    chosen: RefCell<Option<Choice>>,
}

fn busy() -> JsError {
    JsError::new("the training session is busy with a step; try again after it")
}

impl Trainer {
    /// The view a synthesis session trained on and its summary (for the experiment's table).
    pub(crate) fn view_and_summary(&self) -> Result<(View, Summary), JsError> {
        self.with(|s| Ok((s.config().view, s.summary.clone())))
    }

    /// The session out of its cell for a step that awaits (put back after).
    fn take(&self) -> Result<Session, JsError> {
        self.session
            .try_borrow_mut()
            .map_err(|_| busy())?
            .take()
            .ok_or_else(busy)
    }

    fn with<T>(&self, f: impl FnOnce(&Session) -> Result<T, JsError>) -> Result<T, JsError> {
        let cell = self.session.try_borrow().map_err(|_| busy())?;
        f(cell.as_ref().ok_or_else(busy)?)
    }
}

#[wasm_bindgen]
impl Trainer {
    /// A session on the lab's loaded tiles (synthetic, streamed or dropped).
    #[wasm_bindgen(constructor)]
    pub fn new(lab: &Lab, options: JsValue) -> Result<Trainer, JsError> {
        let o: Options = serde_wasm_bindgen::from_value(options)
            .map_err(|e| JsError::new(&format!("session settings: {e}")))?;
        let set: TileSet = lab
            .tiles
            .borrow()
            .tile_set(&lab.camera.borrow())
            .map_err(js_error)?;
        let config = o.session.config(set.task).map_err(js_error)?;
        let mut choice =
            DeviceChoice::parse(o.backend.as_deref().unwrap_or("auto")).map_err(js_error)?;
        let gpu = lab.gpu();
        let device_key = gpu.as_deref().map(|g| device_key(g, &set, &config));
        let remembered = device_key
            .as_ref()
            .and_then(|k| o.remembered_devices.get(k));
        if let (DeviceChoice::Auto, Some(device)) = (choice, remembered) {
            choice = DeviceChoice::parse(device).map_err(js_error)?;
        }
        let session = Session::new(config, set).map_err(js_error)?;
        Ok(Trainer {
            session: RefCell::new(Some(session)),
            sent_snapshots: Cell::new(0),
            pending: RefCell::new(Some((choice, gpu))),
            device_key,
            chosen: RefCell::new(None),
        })
    }

    /// Chooses the device (before the first step; `run` does it where the page did not):
    /// `{device, gpu, measured, key}`, `key` where auto's choice is to be remembered.
    pub async fn prepare(&self) -> Result<JsValue, JsError> {
        if let Some((choice, gpu)) = self.pending.borrow_mut().take() {
            let mut session = self.take()?;
            let chosen = session.choose_device(choice, gpu).await;
            *self.session.borrow_mut() = Some(session);
            *self.chosen.borrow_mut() = Some(chosen.map_err(js_error)?);
        }
        let chosen = self.chosen.borrow().clone();
        let mut value = serde_json::to_value(&chosen).map_err(|e| JsError::new(&e.to_string()))?;
        if let (
            Some(key),
            Some(Choice {
                measured: Some(_), ..
            }),
        ) = (&self.device_key, &chosen)
        {
            value["key"] = key.clone().into();
        }
        to_js(&value)
    }

    /// The device that trains: "WebGPU (...)" or "CPU (wasm SIMD)".
    #[wasm_bindgen(getter)]
    pub fn device(&self) -> String {
        self.chosen
            .borrow()
            .as_ref()
            .map(Choice::describe)
            .unwrap_or_default()
    }

    #[wasm_bindgen(js_name = totalSteps)]
    pub fn total_steps(&self) -> Result<usize, JsError> {
        self.with(|s| Ok(s.total_steps()))
    }

    /// Steps until done or cancelled, calling `on_step(report)` after each; a paused session
    /// waits. Returns false when cancelled.
    pub async fn run(
        &self,
        control: &TrainControl,
        on_step: js_sys::Function,
    ) -> Result<bool, JsError> {
        loop {
            match control.state.get() {
                State::Cancelled => return Ok(false),
                State::Paused => {
                    gloo::timers::future::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
                State::Running => {}
            }
            if self.pending.borrow().is_some() {
                self.prepare().await?;
            }
            let mut session = self.take()?;
            let step = session.step().await;
            *self.session.borrow_mut() = Some(session);
            let Some(report) = step.map_err(js_error)? else {
                return Ok(true);
            };
            let value = to_js(&report)?;
            on_step
                .call1(&JsValue::NULL, &value)
                .map_err(|_| JsError::new("the page's step handler failed"))?;
            // let the worker take the page's messages (pause, cancel) between steps
            gloo::timers::future::sleep(std::time::Duration::ZERO).await;
        }
    }

    /// Snapshots taken since the last call: [{phase, step, maxima: [..5], stages: [names]}] with
    /// images from `snapshotImage`.
    #[wasm_bindgen(js_name = newSnapshots)]
    pub fn new_snapshots(&self) -> Result<JsValue, JsError> {
        self.with(|session| {
            let sent = self.sent_snapshots.get();
            let fresh: Vec<serde_json::Value> = session.snapshots[sent..]
                .iter()
                .enumerate()
                .map(|(k, s)| s.describe(sent + k))
                .collect();
            self.sent_snapshots.set(session.snapshots.len());
            to_js(&fresh)
        })
    }

    /// |dL/d stage| of snapshot `index`, stage `stage`, as a heatmap scaled by `max`.
    #[wasm_bindgen(js_name = snapshotImage)]
    pub fn snapshot_image(
        &self,
        index: usize,
        stage: usize,
        max: f32,
    ) -> Result<RgbaImage, JsError> {
        self.with(|session| snapshot_image(&session.snapshots, index, stage, max))
    }

    /// Stage `stage`'s output in snapshot `index` (the timeline's second row).
    #[wasm_bindgen(js_name = snapshotOutput)]
    pub fn snapshot_output(&self, index: usize, stage: usize) -> Result<RgbaImage, JsError> {
        self.with(|session| snapshot_output(&session.snapshots, index, stage))
    }

    /// The gradient timeline so far as an animated GIF.
    #[wasm_bindgen(js_name = timelineGif)]
    pub fn timeline_gif(&self) -> Result<Vec<u8>, JsError> {
        self.with(|session| timeline_gif(&session.snapshots).map_err(js_error))
    }

    /// The session so far as a run: `{meta, zip}`, its run.json (what the lab log lists) and its
    /// zip (`lens2logit runs import` reads it: settings, results, snapshots and weights).
    /// `started_ms` is the page's clock when the session started.
    #[wasm_bindgen(js_name = runRecord)]
    pub fn run_record(
        &self,
        name: String,
        dataset: String,
        started_ms: f64,
        finished: bool,
    ) -> Result<JsValue, JsError> {
        self.with(|session| {
            let source = RunSource {
                name,
                dataset,
                started_ms: started_ms.max(0.0) as u64,
                finished,
            };
            let run = Run::from_session(session, &source).map_err(js_error)?;
            let zip = run.to_zip().map_err(js_error)?;
            let record = js_sys::Object::new();
            let set = |key: &str, value: &JsValue| {
                js_sys::Reflect::set(&record, &key.into(), value)
                    .map_err(|_| JsError::new("could not build the run record"))
            };
            set("meta", &to_js(run.meta())?)?;
            set("zip", &js_sys::Uint8Array::from(zip.as_slice()).into())?;
            Ok(record.into())
        })
    }

    /// The session's results: metric, curves, drift table, forensics drops.
    pub fn summary(&self) -> Result<JsValue, JsError> {
        // through serde_json: the drift table's intensity keys become strings, as JS objects need
        let json = self
            .with(|s| serde_json::to_value(&s.summary).map_err(|e| JsError::new(&e.to_string())))?;
        to_js(&json)
    }

    /// The groups forensics attacked so far, in attack order: `adversarialImage(i)` shows group
    /// `i` (pair them by this list, not by the summary's keys, which are sorted).
    #[wasm_bindgen(js_name = adversarialGroups)]
    pub fn adversarial_groups(&self) -> Result<Vec<String>, JsError> {
        self.with(|s| Ok(s.adversarial.iter().map(|(g, _)| g.clone()).collect()))
    }

    /// Forensics' adversarial processing of the first validation tile, group `i` (RGB after the
    /// processing's batch norm, shown with its statistics undone to mid-grey).
    #[wasm_bindgen(js_name = adversarialImage)]
    pub fn adversarial_image(&self, i: usize) -> Result<RgbaImage, JsError> {
        self.with(|session| Ok(session.adversarial_image(i).map_err(js_error)?.into()))
    }

    /// The trained task model (safetensors, torchvision names).
    #[wasm_bindgen(js_name = saveModel)]
    pub fn save_model(&self) -> Result<Vec<u8>, JsError> {
        self.with(|s| save_weights(s.model_vars()).map_err(js_error))
    }

    /// The session's processing parameters (safetensors, the paper's names).
    #[wasm_bindgen(js_name = saveIsp)]
    pub fn save_isp(&self) -> Result<Vec<u8>, JsError> {
        self.with(|s| {
            s.isp()
                .to_safetensors(Some(s.isp_running()))
                .map_err(js_error)
        })
    }
}
