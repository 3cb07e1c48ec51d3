//! Jobs in the worker: a fine-tuning session or the 12-view synthesis experiment, driven by the
//! core (`train::job`) with the page's end of it here. Progress goes to the page as events (the
//! snapshots as images), each finished session to the page's lab log, and pause, resume and
//! cancel take effect between steps, the worker yielding to its messages after every step.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use async_trait::async_trait;
use serde::Deserialize;
use wasm_bindgen::prelude::*;

use super::runs::{snapshot_image, snapshot_output};
use super::{js_error, to_js, Lab, RgbaImage};
use lens2logit::gpu::Gpu;
use lens2logit::model::{load_strict, save_weights, seed_weights, TaskModel, WeightsFile};
use lens2logit::runs::Run;
use lens2logit::train::experiment::SynthesisTable;
use lens2logit::train::job::{self, Control, Job, JobSink, Progress, RunSource};
use lens2logit::train::timeline::timeline_gif;
use lens2logit::train::{DeviceChoice, Session, Snapshot, TileSet, TrainOptions};
use lens2logit::viz::Rgba;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Paused,
    Cancelled,
}

/// Pause, resume and cancel for a running job (a separate object, so the page can call it while
/// the job's loop holds the trainer).
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

impl TrainControl {
    /// Whether the page asked to cancel (a camera fit checks between its steps).
    pub(crate) fn cancelled(&self) -> bool {
        self.state.get() == State::Cancelled
    }
}

/// What the page sets up a job with (camelCase in JS): the session's settings, the device and
/// the runs' label.
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
    /// The runs' label in the lab log.
    #[serde(default)]
    name: String,
}

/// What the page remembers auto's measurement under: the adapter, the model, the batch and the
/// tile size.
fn device_key(gpu: &Gpu, set: &TileSet, options: &Options) -> String {
    let (h, w) = set
        .items
        .first()
        .map_or((0, 0), |t| (t.raw.height(), t.raw.width()));
    format!(
        "{}|{}|batch {}|{h}x{w}",
        gpu.label(),
        options.session.model.as_deref().unwrap_or("default"),
        options.session.batch
    )
}

/// A job the page runs, and after it the last session (its results, weights and timeline) and
/// the experiment's table.
#[wasm_bindgen]
pub struct Trainer {
    job: RefCell<Option<Job>>,
    device_key: Option<String>,
    last: RefCell<Option<Session>>,
    table: RefCell<Option<SynthesisTable>>,
}

fn busy() -> JsError {
    JsError::new("the job is still running; try again after it")
}

/// An image as the worker posts it: `{width, height, rgba}` (the buffer transferable).
fn image(image: Rgba) -> Result<JsValue, JsError> {
    let object = js_sys::Object::new();
    let set = |key: &str, value: JsValue| {
        js_sys::Reflect::set(&object, &key.into(), &value)
            .map_err(|_| JsError::new("could not build an image for the page"))
    };
    set("width", image.width.into())?;
    set("height", image.height.into())?;
    set(
        "rgba",
        js_sys::Uint8Array::from(image.data.as_slice()).into(),
    )?;
    Ok(object.into())
}

/// A snapshot as the timeline shows it: its description with each stage's |gradient| heatmap
/// and (where kept) its output.
fn snapshot_js(s: &Snapshot, index: usize) -> Result<JsValue, JsError> {
    let described = s.describe(index);
    let maxima: Vec<f32> = s
        .stages
        .iter()
        .map(|(_, v)| lens2logit::viz::robust_max(v))
        .collect();
    let value = to_js(&described)?;
    let images = js_sys::Array::new();
    for (k, max) in maxima.iter().enumerate() {
        images.push(&image(s.image(k, *max).map_err(js_error)?)?);
    }
    let outputs = js_sys::Array::new();
    if !s.outputs.is_empty() {
        for k in 0..s.stages.len() {
            outputs.push(&image(s.output_image(k).map_err(js_error)?)?);
        }
    }
    js_sys::Reflect::set(&value, &"images".into(), &images)
        .and_then(|_| js_sys::Reflect::set(&value, &"outputs".into(), &outputs))
        .map_err(|_| JsError::new("could not build a snapshot for the page"))?;
    Ok(value)
}

/// The page's end of a job: `sink.progress(event)` for every event, `sink.keep(meta, zip)` (a
/// promise) for every run; a rejected keep (a full storage) is reported, the job goes on.
struct PageSink {
    state: Rc<Cell<State>>,
    progress: js_sys::Function,
    keep: js_sys::Function,
    device_key: Option<String>,
    snapshots_sent: usize,
    save_errors: Vec<String>,
}

impl PageSink {
    fn emit(&self, event: &JsValue) -> lens2logit::Result<()> {
        self.progress
            .call1(&JsValue::NULL, event)
            .map(|_| ())
            .map_err(|_| lens2logit::Error::invalid("the page's progress handler failed"))
    }
}

fn js(e: JsError) -> lens2logit::Error {
    lens2logit::Error::invalid(String::from(
        js_sys::Error::from(JsValue::from(e)).message(),
    ))
}

#[async_trait(?Send)]
impl JobSink for PageSink {
    async fn progress(&mut self, progress: Progress<'_>) -> lens2logit::Result<Control> {
        let event = match progress {
            Progress::Session {
                index,
                count,
                label,
                total_steps,
                choice,
                loaded,
            } => {
                self.snapshots_sent = 0;
                let mut choice_js = serde_json::to_value(choice).unwrap_or_default();
                if let (Some(key), Some(_)) = (&self.device_key, &choice.measured) {
                    choice_js["key"] = key.clone().into();
                }
                serde_json::json!({
                    "kind": "start", "index": index, "count": count, "label": label,
                    "total": total_steps, "device": choice.describe(), "choice": choice_js,
                    "headReinitialised": loaded.and_then(|l| l.head_reinitialised.clone()),
                })
            }
            Progress::Step {
                index,
                count,
                label,
                report,
                snapshots,
            } => {
                let list = js_sys::Array::new();
                for (k, s) in snapshots.iter().enumerate() {
                    list.push(&snapshot_js(s, self.snapshots_sent + k).map_err(js)?);
                }
                self.snapshots_sent += snapshots.len();
                let event = to_js(&serde_json::json!({
                    "kind": "step", "index": index, "count": count, "label": label, "report": report,
                }))
                .map_err(js)?;
                js_sys::Reflect::set(&event, &"snapshots".into(), &list)
                    .map_err(|_| lens2logit::Error::invalid("could not build a step event"))?;
                self.emit(&event)?;
                // the worker takes the page's messages (pause, cancel) between steps
                gloo::timers::future::sleep(std::time::Duration::ZERO).await;
                while self.state.get() == State::Paused {
                    gloo::timers::future::sleep(std::time::Duration::from_millis(50)).await;
                }
                return Ok(match self.state.get() {
                    State::Cancelled => Control::Stop,
                    _ => Control::Go,
                });
            }
        };
        self.emit(&to_js(&event).map_err(js)?)?;
        Ok(Control::Go)
    }

    async fn keep(
        &mut self,
        session: &Session,
        ended: &RunSource,
        _folder: &str,
    ) -> lens2logit::Result<()> {
        let run = Run::from_session(session, ended)?;
        let zip = run.to_zip()?;
        let meta = to_js(run.meta()).map_err(js)?;
        let zip = js_sys::Uint8Array::from(zip.as_slice());
        let kept = self
            .keep
            .call2(&JsValue::NULL, &meta, &zip)
            .map_err(|_| lens2logit::Error::invalid("the page's lab log could not take the run"))?;
        if let Err(error) = wasm_bindgen_futures::JsFuture::from(js_sys::Promise::from(kept)).await
        {
            let message = js_sys::Error::from(error).message();
            self.save_errors.push(String::from(message));
        }
        Ok(())
    }

    async fn table(&mut self, table: &SynthesisTable) -> lens2logit::Result<()> {
        let event = serde_json::json!({ "kind": "table", "rows": table.rows.len() });
        self.emit(&to_js(&event).map_err(js)?)
    }
}

impl Trainer {
    fn with<T>(&self, f: impl FnOnce(&Session) -> Result<T, JsError>) -> Result<T, JsError> {
        let last = self.last.try_borrow().map_err(|_| busy())?;
        f(last.as_ref().ok_or_else(busy)?)
    }

    fn with_table<T>(&self, f: impl FnOnce(&SynthesisTable) -> T) -> Result<T, JsError> {
        let table = self.table.try_borrow().map_err(|_| busy())?;
        let table = table
            .as_ref()
            .ok_or_else(|| JsError::new("the job made no synthesis table"))?;
        Ok(f(table))
    }
}

#[wasm_bindgen]
impl Trainer {
    /// A job on the lab's loaded tiles (synthetic, streamed or dropped).
    #[wasm_bindgen(constructor)]
    pub fn new(lab: &Lab, options: JsValue) -> Result<Trainer, JsError> {
        let o: Options = serde_wasm_bindgen::from_value(options)
            .map_err(|e| JsError::new(&format!("session settings: {e}")))?;
        let data: TileSet = lab
            .tiles
            .borrow()
            .tile_set(&lab.camera.borrow())
            .map_err(js_error)?;
        let (experiment, config) = o.session.job(data.task).map_err(js_error)?;
        let mut device =
            DeviceChoice::parse(o.backend.as_deref().unwrap_or("auto")).map_err(js_error)?;
        let adapter = lab.gpu();
        let device_key = adapter.as_deref().map(|g| device_key(g, &data, &o));
        let remembered = device_key
            .as_ref()
            .and_then(|k| o.remembered_devices.get(k));
        if let (DeviceChoice::Auto, Some(kept)) = (device, remembered) {
            device = DeviceChoice::parse(kept).map_err(js_error)?;
        }
        let job = Job {
            experiment,
            config,
            data,
            weights: None,
            device,
            adapter,
            name: o.name,
        };
        Ok(Trainer {
            job: RefCell::new(Some(job)),
            device_key,
            last: RefCell::new(None),
            table: RefCell::new(None),
        })
    }

    /// Synthesis: tests the models on a camera twin too (its twin.safetensors; `name` labels its
    /// column, `twin:NAME`), a 13th view of the drift table.
    #[wasm_bindgen(js_name = testOnTwin)]
    pub fn test_on_twin(&self, bytes: &[u8], name: &str) -> Result<(), JsError> {
        let twin =
            lens2logit::isp::param::TwinView::from_safetensors(name, bytes).map_err(js_error)?;
        let mut job = self.job.try_borrow_mut().map_err(|_| busy())?;
        let job = job
            .as_mut()
            .ok_or_else(|| JsError::new("this job has run already"))?;
        job.config.camera_twin = Some(twin);
        Ok(())
    }

    /// Starts the model from a weights file (fine-tuning): safetensors or a PyTorch checkpoint,
    /// strict names. `{name, url, sha256, bytes, tensors, headReinitialised}`.
    #[wasm_bindgen(js_name = startFrom)]
    pub fn start_from(
        &self,
        bytes: &[u8],
        name: &str,
        url: Option<String>,
    ) -> Result<JsValue, JsError> {
        let mut job = self.job.try_borrow_mut().map_err(|_| busy())?;
        let job = job.as_mut().ok_or_else(busy)?;
        let file = WeightsFile::read(bytes, name, url.as_deref()).map_err(js_error)?;
        // checked now, so the page says what is wrong before the session starts
        let vars = candle_nn::VarMap::new();
        let (kind, classes) = (job.config.model, job.data.classes.len());
        TaskModel::new(kind, classes, &vars, &candle_core::Device::Cpu).map_err(js_error)?;
        seed_weights(&vars, 0).map_err(js_error)?;
        let loaded = load_strict(&vars, kind, classes, &file).map_err(js_error)?;
        let described = serde_json::json!({
            "name": file.source.name, "url": file.source.url, "sha256": file.source.sha256,
            "bytes": file.source.bytes, "tensors": loaded.set,
            "headReinitialised": loaded.head_reinitialised,
        });
        job.weights = Some(file);
        to_js(&described)
    }

    /// Runs the job to its end or until cancelled: `sink.progress(event)` for its events
    /// ({kind: 'start' | 'step' | 'table', ...}), `sink.keep(meta, zip)` (a promise) for each
    /// run. Resolves to `{finished, saveErrors}`.
    pub async fn run(&self, control: &TrainControl, sink: JsValue) -> Result<JsValue, JsError> {
        let job = self.job.try_borrow_mut().map_err(|_| busy())?.take();
        let job = job.ok_or_else(|| JsError::new("this job has run already"))?;
        let function = |name: &str| -> Result<js_sys::Function, JsError> {
            js_sys::Reflect::get(&sink, &name.into())
                .ok()
                .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
                .ok_or_else(|| JsError::new(&format!("the job's sink lacks {name}()")))
        };
        let mut page = PageSink {
            state: control.state.clone(),
            progress: function("progress")?,
            keep: function("keep")?,
            device_key: self.device_key.clone(),
            snapshots_sent: 0,
            save_errors: Vec::new(),
        };
        let outcome = job::run(job, &mut page).await.map_err(js_error)?;
        *self.last.borrow_mut() = outcome.last;
        *self.table.borrow_mut() = outcome.table;
        to_js(&serde_json::json!({
            "finished": outcome.finished, "saveErrors": page.save_errors,
        }))
    }

    /// |dL/d stage| of snapshot `index` of the last session, stage `stage`, scaled by `max`.
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

    /// The last session's gradient timeline as an animated GIF.
    #[wasm_bindgen(js_name = timelineGif)]
    pub fn timeline_gif(&self) -> Result<Vec<u8>, JsError> {
        self.with(|session| timeline_gif(&session.snapshots).map_err(js_error))
    }

    /// The last session's results: metric, curves, drift table, forensics drops.
    pub fn summary(&self) -> Result<JsValue, JsError> {
        // through serde_json: the drift table's intensity keys become strings, as JS objects need
        let json = self
            .with(|s| serde_json::to_value(&s.summary).map_err(|e| JsError::new(&e.to_string())))?;
        to_js(&json)
    }

    /// Every table of the last session in one CSV (curves, drift table, corruption baseline).
    #[wasm_bindgen(js_name = resultsCsv)]
    pub fn results_csv(&self) -> Result<String, JsError> {
        self.with(|s| {
            let config = s.config();
            Ok(lens2logit::runs::results_csv(
                &s.summary,
                &config.intensities,
                &config.view.to_string(),
            ))
        })
    }

    /// The groups forensics attacked, in attack order: `adversarialImage(i)` shows group `i`.
    #[wasm_bindgen(js_name = adversarialGroups)]
    pub fn adversarial_groups(&self) -> Result<Vec<String>, JsError> {
        self.with(|s| Ok(s.adversarial.iter().map(|(g, _)| g.clone()).collect()))
    }

    /// Forensics' adversarial processing of the first validation tile, group `i`.
    #[wasm_bindgen(js_name = adversarialImage)]
    pub fn adversarial_image(&self, i: usize) -> Result<RgbaImage, JsError> {
        self.with(|session| Ok(session.adversarial_image(i).map_err(js_error)?.into()))
    }

    /// The trained task model (safetensors, the libraries' names).
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

    /// The synthesis table: `synthesis_12x12.csv`.
    #[wasm_bindgen(js_name = matrixCsv)]
    pub fn matrix_csv(&self) -> Result<String, JsError> {
        self.with_table(SynthesisTable::matrix_csv)
    }

    /// `synthesis_intensity.csv`.
    #[wasm_bindgen(js_name = intensityCsv)]
    pub fn intensity_csv(&self) -> Result<String, JsError> {
        self.with_table(SynthesisTable::intensity_csv)
    }

    /// `synthesis.json`: the rows with every intensity, as `lens2logit experiment gather` reads
    /// them.
    #[wasm_bindgen(js_name = tableJson)]
    pub fn table_json(&self) -> Result<Vec<u8>, JsError> {
        self.with_table(SynthesisTable::to_json)?.map_err(js_error)
    }

    #[wasm_bindgen(js_name = matrixImage)]
    pub fn matrix_image(&self) -> Result<RgbaImage, JsError> {
        Ok(self.with_table(SynthesisTable::matrix_image)?.into())
    }

    #[wasm_bindgen(js_name = intensityImage)]
    pub fn intensity_image(&self) -> Result<RgbaImage, JsError> {
        Ok(self.with_table(SynthesisTable::intensity_image)?.into())
    }
}
