//! Fine-tuning sessions in the worker: the training engine stepped from an async loop that
//! yields to the event loop after every step, so pause, resume and cancel take effect at once
//! and the page keeps receiving progress.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde::Deserialize;
use wasm_bindgen::prelude::*;

use super::{js_error, to_js, Lab, RgbaImage};
use crate::data::synthetic::Task;
use crate::isp::static_pipeline::View;
use crate::model::{save_weights, ModelKind};
use crate::train::{Mode, Penalty, Session, TileSet, TrainConfig};
use crate::viz;

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

/// What the page sets up a session with (camelCase in JS).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Options {
    mode: String,
    model: Option<String>,
    steps: usize,
    lr: f64,
    batch: usize,
    seed: u64,
    view: Option<String>,
    lambda: Option<f64>,
    penalty: Option<String>,
    group: Option<String>,
    forensic_steps: Option<usize>,
    snapshot_every: Option<usize>,
    intensities: Option<Vec<u32>>,
    corruption_severity: Option<u8>,
}

/// A session the page drives. The session sits in a RefCell borrowed only inside each step, so
/// the page can read snapshots and results while `run` is awaiting.
#[wasm_bindgen]
pub struct Trainer {
    session: RefCell<Session>,
    sent_snapshots: Cell<usize>,
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
        let model = match o.model.as_deref() {
            Some(m) => ModelKind::parse(m).map_err(js_error)?,
            None if set.task == Task::Segmentation => ModelKind::UNetSmall,
            None => ModelKind::ResNetSmall,
        };
        let mut config = TrainConfig::new(Mode::parse(&o.mode).map_err(js_error)?, model);
        config.steps = o.steps;
        config.lr = o.lr;
        config.batch = o.batch;
        config.seed = o.seed;
        if let Some(v) = o.view {
            config.view = v.parse::<View>().map_err(js_error)?;
        }
        if let Some(l) = o.lambda {
            config.lambda = l;
        }
        if o.penalty.as_deref() == Some("ssim") {
            config.penalty = Penalty::Ssim;
        }
        if let Some(g) = o.group.filter(|g| !g.is_empty() && g != "each") {
            config.groups = vec![g];
        }
        if let Some(s) = o.forensic_steps {
            config.forensic_steps = s;
        }
        if let Some(s) = o.snapshot_every {
            config.snapshot_every = s;
        }
        if let Some(i) = o.intensities {
            config.intensities = i;
        }
        config.corruption_severity = o.corruption_severity;
        let session = Session::new(config, set).map_err(js_error)?;
        Ok(Trainer {
            session: RefCell::new(session),
            sent_snapshots: Cell::new(0),
        })
    }

    #[wasm_bindgen(js_name = totalSteps)]
    pub fn total_steps(&self) -> usize {
        self.session.borrow().total_steps()
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
            let step = self.session.borrow_mut().step();
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
        let session = self.session.borrow();
        let sent = self.sent_snapshots.get();
        let fresh: Vec<serde_json::Value> = session.snapshots[sent..]
            .iter()
            .enumerate()
            .map(|(k, s)| {
                serde_json::json!({
                    "index": sent + k, "phase": s.phase, "step": s.step,
                    "stages": s.stages.iter().map(|(n, _)| n).collect::<Vec<_>>(),
                    "maxima": s.stages.iter().map(|(_, v)| viz::robust_max(v)).collect::<Vec<_>>(),
                })
            })
            .collect();
        self.sent_snapshots.set(session.snapshots.len());
        to_js(&fresh)
    }

    /// |dL/d stage| of snapshot `index`, stage `stage`, as a heatmap scaled by `max`.
    #[wasm_bindgen(js_name = snapshotImage)]
    pub fn snapshot_image(
        &self,
        index: usize,
        stage: usize,
        max: f32,
    ) -> Result<RgbaImage, JsError> {
        let session = self.session.borrow();
        let s = session
            .snapshots
            .get(index)
            .ok_or_else(|| JsError::new("no such snapshot"))?;
        let (_, values) = s
            .stages
            .get(stage)
            .ok_or_else(|| JsError::new("no such stage"))?;
        Ok(viz::heatmap(values, s.width, s.height, max).into())
    }

    /// The session's results: metric, curves, drift table, forensics drops.
    pub fn summary(&self) -> Result<JsValue, JsError> {
        // through serde_json: the drift table's intensity keys become strings, as JS objects need
        let json = serde_json::to_value(&self.session.borrow().summary)
            .map_err(|e| JsError::new(&e.to_string()))?;
        to_js(&json)
    }

    /// Forensics' adversarial processing of the first validation tile, group `i` (RGB after the
    /// processing's batch norm, shown with its statistics undone to mid-grey).
    #[wasm_bindgen(js_name = adversarialImage)]
    pub fn adversarial_image(&self, i: usize) -> Result<RgbaImage, JsError> {
        let session = self.session.borrow();
        let (_, t) = session
            .adversarial
            .get(i)
            .ok_or_else(|| JsError::new("no such view"))?;
        let t = t
            .get(0)
            .and_then(|t| t.affine(0.15, 0.5))
            .map_err(|e| JsError::new(&e.to_string()))?;
        let (c, h, w) = t.dims3().map_err(|e| JsError::new(&e.to_string()))?;
        let v = t
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| JsError::new(&e.to_string()))?;
        let mut rgba = Vec::with_capacity(h * w * 4);
        for p in 0..h * w {
            for ch in 0..c.min(3) {
                rgba.push((v[ch * h * w + p].clamp(0.0, 1.0) * 255.0) as u8);
            }
            rgba.push(255);
        }
        Ok(RgbaImage::new(w, h, rgba))
    }

    /// The trained task model (safetensors, torchvision names).
    #[wasm_bindgen(js_name = saveModel)]
    pub fn save_model(&self) -> Result<Vec<u8>, JsError> {
        save_weights(self.session.borrow().model_vars()).map_err(js_error)
    }

    /// The session's processing parameters (safetensors, the paper's names).
    #[wasm_bindgen(js_name = saveIsp)]
    pub fn save_isp(&self) -> Result<Vec<u8>, JsError> {
        self.session
            .borrow()
            .isp()
            .to_safetensors()
            .map_err(js_error)
    }
}
