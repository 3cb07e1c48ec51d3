//! A run logged to a real `mlflow server` (from `$LENS2LOGIT_MLFLOW`, which `scripts/test.sh`
//! installs) and brought back whole; the server is checked independently over its REST API.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lens2logit::data::Task;
use lens2logit::runs::mlflow::Tracking;
use lens2logit::runs::Run;
use lens2logit::spec::models::ModelKind;
use lens2logit::train::job::{now_ms, RunSource};
use lens2logit::train::{Mode, Session, TileSet, TrainConfig};
use serde_json::{json, Value};

/// A real MLflow tracking server (SQLite, proxied artifacts, both in a temporary folder); its
/// whole process group goes down with it.
struct MlflowServer {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl MlflowServer {
    fn start() -> Self {
        let mlflow = std::env::var("LENS2LOGIT_MLFLOW").expect(
            "LENS2LOGIT_MLFLOW is not set: it names the `mlflow` executable these tests start \
             (scripts/test.sh installs a pinned one: `source scripts/common.sh; ensure_python_references`)",
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = {
            use std::os::unix::process::CommandExt;
            Command::new(&mlflow)
                .arg("server")
                .arg("--backend-store-uri")
                .arg(format!(
                    "sqlite:///{}",
                    dir.path().join("mlflow.db").display()
                ))
                .arg("--artifacts-destination")
                .arg(dir.path().join("artifacts"))
                .args([
                    "--host",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    "--workers",
                    "1",
                ])
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                // its own group, so that its uvicorn and job-runner children are stopped with it
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {mlflow}: {e}"))
        };
        let mut server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        server.wait_healthy();
        server
    }

    fn wait_healthy(&mut self) {
        let start = Instant::now();
        let health = format!("{}/health", self.url);
        loop {
            if let Ok(r) = reqwest::blocking::get(&health) {
                if r.status().is_success() {
                    return;
                }
            }
            let exited = self.child.try_wait().unwrap();
            if exited.is_some() || start.elapsed() > Duration::from_secs(180) {
                let log = std::fs::read_to_string(self._dir.path().join("server.log"))
                    .unwrap_or_default();
                let tail: String = log
                    .chars()
                    .rev()
                    .take(3000)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                panic!("mlflow server did not come up at {health} ({exited:?}):\n{tail}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn api(&self, endpoint: &str) -> String {
        format!("{}/api/2.0/mlflow/{endpoint}", self.url)
    }

    fn get(&self, endpoint: &str, query: &[(&str, &str)]) -> Value {
        let response = reqwest::blocking::Client::new()
            .get(self.api(endpoint))
            .query(query)
            .send()
            .unwrap();
        assert!(
            response.status().is_success(),
            "{endpoint}: {}",
            response.text().unwrap()
        );
        serde_json::from_slice(&response.bytes().unwrap()).unwrap()
    }

    fn post(&self, endpoint: &str, body: Value) -> Value {
        let response = reqwest::blocking::Client::new()
            .post(self.api(endpoint))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        assert!(
            response.status().is_success(),
            "{endpoint}: {}",
            response.text().unwrap()
        );
        serde_json::from_slice(&response.bytes().unwrap()).unwrap()
    }

    /// Every artifact file of an MLflow run with its size, listed recursively.
    fn artifacts(&self, run_id: &str) -> BTreeMap<String, u64> {
        let mut files = BTreeMap::new();
        let mut dirs = vec![String::new()];
        while let Some(dir) = dirs.pop() {
            let listing = self.get("artifacts/list", &[("run_id", run_id), ("path", &dir)]);
            for f in listing["files"].as_array().into_iter().flatten() {
                let path = f["path"].as_str().unwrap().to_string();
                if f["is_dir"].as_bool() == Some(true) {
                    dirs.push(path);
                } else {
                    files.insert(path, f["file_size"].as_u64().unwrap());
                }
            }
        }
        files
    }

    fn history(&self, run_id: &str, key: &str) -> Vec<Value> {
        let h = self.get(
            "metrics/get-history",
            &[("run_id", run_id), ("metric_key", key)],
        );
        h["metrics"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let start = Instant::now();
        while self.child.try_wait().ok().flatten().is_none() {
            if start.elapsed() > Duration::from_secs(10) {
                let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A short real session on synthetic tiles: two training phases (frozen, then joint processing).
fn trained_run() -> Run {
    let mut config = TrainConfig::new(Mode::Optimisation, ModelKind::ResNetSmall);
    config.steps = 5;
    config.batch = 4;
    config.intensities = vec![100];
    config.snapshot_every = 5;
    let mut data = TileSet::synthetic(Task::Classification, 16, 32, 0).unwrap();
    data.label = "synthetic".into();
    let mut session = Session::new(config, data).unwrap();
    while pollster::block_on(session.step()).unwrap().is_some() {}
    let source = RunSource {
        name: "mlflow round trip".into(),
        started_ms: now_ms() - 60_000,
        finished: true,
    };
    Run::from_session(&session, &source).unwrap()
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Runtime::new().unwrap().block_on(f)
}

/// The values of a `[{key, value}, ...]` list of MLflow's.
fn pairs(list: &Value) -> BTreeMap<String, Value> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|e| (e["key"].as_str().unwrap().to_string(), e["value"].clone()))
        .collect()
}

/// MLflow's JSON prints doubles to 16 significant digits: the last bit may differ.
fn assert_close(logged: &Value, value: f64, what: &str) {
    let got = logged.as_f64().unwrap_or(f64::NAN);
    assert!(
        (got - value).abs() <= 1e-14 * value.abs().max(1.0),
        "{what}: MLflow has {logged}, the run {value}"
    );
}

#[test]
fn a_run_goes_to_mlflow_and_comes_back_whole() {
    let server = MlflowServer::start();
    let run = trained_run();
    let tracking = Tracking::new(&format!("{}/", server.url)).unwrap();
    let id = logged_with_progress(&tracking, &run);
    the_server_shows_the_run(&server, &id, &run);
    the_curves_are_histories(&server, &id, &run);
    the_files_are_artifacts_and_come_back(&server, &tracking, &id, &run);
    what_mlflow_limits_is_made_to_fit(&server, &tracking, &id, &run);
    unknown_and_foreign_runs_are_named(&server, &tracking, &id);
    the_page_may_call_mlflow(&server);
}

/// The run logged, its progress reported up to all of its files; its MLflow id.
fn logged_with_progress(tracking: &Tracking, run: &Run) -> String {
    let mut progress = Vec::new();
    let id = block_on(
        tracking.log_run("lens2logit tests", run, &mut |done, total| {
            progress.push((done, total))
        }),
    )
    .unwrap();
    let files = run.files().count();
    assert_eq!(progress.len(), files + 1);
    assert_eq!(progress.last(), Some(&(files, files)));
    id
}

/// The server's own view: name, times, status, tags, params, final metrics.
fn the_server_shows_the_run(server: &MlflowServer, id: &str, run: &Run) {
    let meta = run.meta();
    let got = server.get("runs/get", &[("run_id", id)]);
    let info = &got["run"]["info"];
    assert_eq!(info["run_name"], json!(meta.name));
    assert_eq!(info["status"], json!("FINISHED"));
    assert_eq!(info["start_time"], json!(meta.started_ms));
    assert_eq!(info["end_time"], json!(meta.finished_ms));
    let tags = pairs(&got["run"]["data"]["tags"]);
    assert_eq!(tags["lens2logit.run_id"], json!(meta.id));
    assert_eq!(tags["lens2logit.model"], json!(meta.model));
    assert_eq!(tags["lens2logit.mode"], json!(meta.mode));
    assert_eq!(tags["lens2logit.dataset"], json!(meta.dataset));
    let params = pairs(&got["run"]["data"]["params"]);
    let expected: BTreeMap<String, Value> = meta
        .params
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    assert_eq!(params, expected);
    let metrics = pairs(&got["run"]["data"]["metrics"]);
    assert!(!meta.metrics.is_empty());
    for (name, value) in &meta.metrics {
        assert_close(&metrics[name], *value, name);
    }
}

/// One history per phase and quantity, over one step count across phases.
fn the_curves_are_histories(server: &MlflowServer, id: &str, run: &Run) {
    let meta = run.meta();
    let curves = run.curves().unwrap();
    assert_eq!(curves.len(), 2, "frozen and joint processing");
    let mut step = 0;
    for curve in &curves {
        let loss = server.history(id, &format!("{}/loss", curve.phase));
        let metric = server.history(id, &format!("{}/{}", curve.phase, meta.metric));
        assert_eq!(loss.len(), curve.steps.len(), "{}", curve.phase);
        assert_eq!(metric.len(), curve.steps.len(), "{}", curve.phase);
        for (i, (_, l, _)) in curve.steps.iter().enumerate() {
            let logged = loss
                .iter()
                .find(|m| m["step"] == json!(step + i + 1))
                .unwrap();
            assert_close(&logged["value"], f64::from(*l), &curve.phase);
        }
        step += curve.steps.len();
    }
    assert_eq!(step, meta.steps);
}

/// Every file is an artifact at its own path, of its own size, and comes back byte for byte.
fn the_files_are_artifacts_and_come_back(
    server: &MlflowServer,
    tracking: &Tracking,
    id: &str,
    run: &Run,
) {
    let listed = server.artifacts(id);
    let own: BTreeMap<String, u64> = run
        .files()
        .map(|(name, bytes)| (name.to_string(), bytes.len() as u64))
        .collect();
    assert_eq!(listed, own);

    // and comes back byte for byte
    let back = block_on(tracking.fetch_run(id)).unwrap();
    assert_eq!(&back, run);
}

/// A second run goes into the same experiment; a cancelled one ends KILLED; what MLflow limits
/// (long values, NaN, odd phase names) is made to fit, and file names it cannot keep are refused.
fn what_mlflow_limits_is_made_to_fit(
    server: &MlflowServer,
    tracking: &Tracking,
    id: &str,
    run: &Run,
) {
    let mut edge = run.meta().clone();
    edge.status = "cancelled".into();
    edge.params.insert("long".into(), "x".repeat(7000));
    let mut edge_files: BTreeMap<String, Vec<u8>> = run
        .files()
        .map(|(n, b)| (n.to_string(), b.to_vec()))
        .collect();
    edge_files.insert("run.json".into(), edge.to_json().unwrap());
    edge_files.insert(
        "metrics.csv".into(),
        b"phase,step,loss,metric\n\"frozen, static\",1,NaN,0.25\n\"frozen, static\",2,1.5,0.5\n"
            .to_vec(),
    );
    edge_files.insert("notes/a b?;&=1.txt".into(), b"an odd name".to_vec());
    let edge_run = Run::from_files(edge_files).unwrap();
    for name in ["notes/50%.txt", "notes/#1.txt"] {
        let mut refused = edge_run.clone();
        refused.insert(name, vec![1]).unwrap();
        let e = block_on(tracking.log_run("lens2logit tests", &refused, &mut |_, _| {}))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("MLflow cannot keep a file named") && e.contains(name),
            "{e}"
        );
    }
    let edge_id =
        block_on(tracking.log_run("lens2logit tests", &edge_run, &mut |_, _| {})).unwrap();
    assert_ne!(edge_id, id);
    let got = server.get("runs/get", &[("run_id", &edge_id)]);
    assert_eq!(got["run"]["info"]["status"], json!("KILLED"));
    assert_eq!(
        got["run"]["info"]["experiment_id"],
        server.get("runs/get", &[("run_id", id)])["run"]["info"]["experiment_id"]
    );
    let params = pairs(&got["run"]["data"]["params"]);
    assert_eq!(params["long"].as_str().unwrap().len(), 6000);
    let loss = server.history(&edge_id, "frozen_ static/loss");
    assert_eq!(loss.len(), 2);
    assert!(loss.iter().any(|m| m["value"] == json!("NaN")), "{loss:?}");
    assert_eq!(block_on(tracking.fetch_run(&edge_id)).unwrap(), edge_run);
}

/// An unknown run, and a run this lab did not log, are named as such.
fn unknown_and_foreign_runs_are_named(server: &MlflowServer, tracking: &Tracking, id: &str) {
    let e = block_on(tracking.fetch_run("0123456789abcdef0123456789abcdef"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&server.url) && e.contains("RESOURCE_DOES_NOT_EXIST") && e.contains("not found"),
        "{e}"
    );
    let experiment =
        server.get("runs/get", &[("run_id", id)])["run"]["info"]["experiment_id"].clone();
    let foreign = server.post(
        "runs/create",
        json!({"experiment_id": experiment, "run_name": "not ours"}),
    );
    let foreign = foreign["run"]["info"]["run_id"].as_str().unwrap();
    let e = block_on(tracking.fetch_run(foreign))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("has no run.json") && e.contains("not logged by this lab"),
        "{e}"
    );
}

/// The lab's page (http://127.0.0.1:8080) may call the REST API and the artifact proxy: MLflow
/// allows localhost origins by default.
fn the_page_may_call_mlflow(server: &MlflowServer) {
    let preflight = reqwest::blocking::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/2.0/mlflow-artifacts/artifacts/x", server.url),
        )
        .header("Origin", "http://127.0.0.1:8080")
        .header("Access-Control-Request-Method", "PUT")
        .send()
        .unwrap();
    assert_eq!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap()),
        Some("http://127.0.0.1:8080")
    );
}

#[test]
fn a_server_that_is_down_is_named_with_what_to_do() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let tracking = Tracking::new(&url).unwrap();
    let e = block_on(tracking.fetch_run("0123456789abcdef0123456789abcdef"))
        .unwrap_err()
        .to_string();
    let expected =
        format!("cannot reach the MLflow tracking server at {url} (is `mlflow server` running?)");
    assert!(e.starts_with(&expected), "{e}");

    let meta = json!({
        "format": 1, "id": "20261202-101500-ab12", "name": "x", "started_ms": 0, "finished_ms": 1,
        "status": "finished", "mode": "synthesis", "task": "classification", "model": "resnet_small",
        "view": "", "dataset": "synthetic", "device": "CPU", "metric": "accuracy", "steps": 0,
        "params": {}, "metrics": {},
    });
    let run = Run::from_files(BTreeMap::from([(
        "run.json".to_string(),
        serde_json::to_vec(&meta).unwrap(),
    )]))
    .unwrap();
    let e = block_on(tracking.log_run("x", &run, &mut |_, _| {}))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&expected), "{e}");
}
