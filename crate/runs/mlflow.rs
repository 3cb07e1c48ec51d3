//! MLflow, the tracking server the paper used. A run goes in as an MLflow run (its params, its
//! final and per-step metrics, tags, and every file as an artifact at its own path) and comes
//! back whole from those artifacts. Plain REST over reqwest, the same code natively (tokio) and in
//! the page's worker (fetch), so the artifacts go through the server's artifact proxy
//! (`mlflow-artifacts:`): a browser cannot write to the bucket behind it.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::tracking::key;
use super::{Run, META};
use crate::data::http::sleep;
use crate::train::job::now_ms;
use crate::{Error, Result};

// MLflow's limits (mlflow/utils/validation.py): a larger batch or a longer key is refused.
const MAX_PARAMS_PER_BATCH: usize = 100;
const MAX_METRICS_PER_BATCH: usize = 1000;
// Longer values are truncated by the server; we truncate first, so what is sent is what is kept.
const MAX_PARAM_VALUE: usize = 6000;
const MAX_TAG_VALUE: usize = 8000;

// What we read from a server at most, so that a hostile one cannot exhaust memory: a run's own
// bounds for the artifacts, and room for a long listing as JSON.
use super::{MAX_BYTES as MAX_ARTIFACT_BYTES, MAX_FILES as MAX_ARTIFACT_ENTRIES};
const MAX_JSON_BYTES: u64 = 16 << 20;
const MAX_REFUSAL_BYTES: u64 = 4096;

/// Attempts of one request when the server is busy (429) or a proxy in front of it fails (502,
/// 503, 504); any other answer is final.
const ATTEMPTS: u32 = 3;

const PROXY_SCHEME: &str = "mlflow-artifacts:";

/// An MLflow tracking server, by its base URL (e.g. `http://127.0.0.1:5000`).
#[derive(Debug, Clone)]
pub struct Tracking {
    base: Url,
    client: reqwest::Client,
}

/// A request's body.
#[derive(Clone, Copy)]
enum Body<'a> {
    None,
    Json(&'a Value),
    Bytes(&'a [u8]),
}

// The parts of MLflow's answers we use (serde skips the rest).
#[derive(Deserialize)]
struct ExperimentReply {
    experiment: Experiment,
}

#[derive(Deserialize)]
struct Experiment {
    experiment_id: String,
    #[serde(default)]
    lifecycle_stage: String,
}

#[derive(Deserialize)]
struct CreatedExperiment {
    experiment_id: String,
}

#[derive(Deserialize)]
struct RunReply {
    run: RunInfoHolder,
}

#[derive(Deserialize)]
struct RunInfoHolder {
    info: RunInfo,
}

#[derive(Deserialize)]
struct RunInfo {
    run_id: String,
    artifact_uri: String,
}

#[derive(Deserialize)]
struct Listing {
    #[serde(default)]
    files: Vec<FileInfo>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct FileInfo {
    path: String,
    #[serde(default)]
    is_dir: bool,
}

/// MLflow's refusal of a request: `{error_code, message}` (or whatever text the server sent).
struct Refusal {
    status: StatusCode,
    code: String,
    message: String,
}

impl Tracking {
    /// The server at `url` (http or https; a trailing '/' is dropped). Nothing is sent yet.
    pub fn new(url: &str) -> Result<Self> {
        let trimmed = url.trim().trim_end_matches('/');
        let bad = |why: &str| {
            Error::invalid(format!(
                "{trimmed:?} is not an MLflow tracking server's address ({why}); it looks like http://127.0.0.1:5000"
            ))
        };
        let base = Url::parse(trimmed).map_err(|e| bad(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad("only http and https are served"));
        }
        if base.host_str().is_none() {
            return Err(bad("it names no host"));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(bad("it may not have a query or fragment"));
        }
        #[cfg(not(target_arch = "wasm32"))]
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| Error::Network(format!("cannot set up an HTTP client: {e}")))?;
        // the browser's fetch has its own timeouts
        #[cfg(target_arch = "wasm32")]
        let client = reqwest::Client::new();
        Ok(Self { base, client })
    }

    /// The server's address as given (without a trailing '/').
    pub fn url(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// Logs `run` in `experiment` (created when missing) and returns the MLflow run id: the params,
    /// final metrics at the last step, the curves as `{phase}/loss` and `{phase}/{metric}` over a
    /// step count that runs on across phases, then every file as an artifact at its own path
    /// (`on_progress(done, total)` after each), then the status (KILLED for a cancelled session).
    /// A run that fails half-way is marked FAILED on the server.
    pub async fn log_run(
        &self,
        experiment: &str,
        run: &Run,
        on_progress: &mut dyn FnMut(usize, usize),
    ) -> Result<String> {
        // checked before anything is logged: MLflow decodes artifact paths until they stop
        // changing (so '%' would not survive) and refuses '#'
        if let Some((name, _)) = run.files().find(|(name, _)| name.contains(['#', '%'])) {
            return Err(Error::invalid(format!(
                "MLflow cannot keep a file named {name:?} (its artifact paths may not hold '#' or '%'): rename it"
            )));
        }
        let meta = run.meta();
        let experiment_id = self.experiment(experiment).await?;
        let tags: Vec<Value> = run
            .tags()
            .into_iter()
            .map(|(k, v)| json!({"key": k, "value": truncate(v, MAX_TAG_VALUE)}))
            .collect();
        let request = json!({
            "experiment_id": experiment_id,
            "run_name": meta.name,
            "start_time": meta.started_ms,
            "tags": tags,
        });
        let created: RunReply = self
            .call(
                "creating the MLflow run",
                Method::POST,
                self.api("runs/create", &[]),
                Body::Json(&request),
            )
            .await?;
        let info = created.run.info;

        let logged = self.fill(&info, run, on_progress).await;
        let (status, end) = match &logged {
            Ok(()) if meta.status == "cancelled" => ("KILLED", meta.finished_ms),
            Ok(()) => ("FINISHED", meta.finished_ms),
            Err(_) => ("FAILED", now_ms()),
        };
        let request = json!({"run_id": info.run_id, "status": status, "end_time": end});
        let updated = self
            .call::<Value>(
                &format!("marking MLflow run {} {status}", info.run_id),
                Method::POST,
                self.api("runs/update", &[]),
                Body::Json(&request),
            )
            .await;
        logged?;
        updated?;
        Ok(info.run_id)
    }

    /// The run logged as MLflow run `run_id`, from its artifacts (which must include `run.json`:
    /// only runs this lab logged come back).
    pub async fn fetch_run(&self, run_id: &str) -> Result<Run> {
        let id_ok = !run_id.is_empty()
            && run_id.len() <= 256
            && run_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !id_ok {
            return Err(Error::invalid(format!(
                "{run_id:?} is not an MLflow run id (letters, digits, '-' and '_', like the 32 hex digits MLflow shows)"
            )));
        }
        let reply: RunReply = self
            .call(
                &format!("reading MLflow run {run_id}"),
                Method::GET,
                self.api("runs/get", &[("run_id", run_id)]),
                Body::None,
            )
            .await?;
        let root = self.proxied_root(&reply.run.info.artifact_uri)?;

        let mut files = std::collections::BTreeMap::new();
        let (mut entries, mut pages, mut total) = (0usize, 0usize, 0u64);
        let mut dirs = vec![String::new()];
        while let Some(dir) = dirs.pop() {
            let mut token = String::new();
            loop {
                pages += 1;
                if pages > MAX_ARTIFACT_ENTRIES {
                    return Err(self.too_many(run_id));
                }
                let mut query = vec![("run_id", run_id)];
                if !dir.is_empty() {
                    query.push(("path", dir.as_str()));
                }
                if !token.is_empty() {
                    query.push(("page_token", token.as_str()));
                }
                let listing: Listing = self
                    .call(
                        &format!("listing the artifacts of MLflow run {run_id}"),
                        Method::GET,
                        self.api("artifacts/list", &query),
                        Body::None,
                    )
                    .await?;
                for file in listing.files {
                    entries += 1;
                    if entries > MAX_ARTIFACT_ENTRIES {
                        return Err(self.too_many(run_id));
                    }
                    let path = child(&dir, &file.path).ok_or_else(|| {
                        Error::Network(format!(
                            "{} listed an artifact {:?} of MLflow run {run_id} outside the folder {dir:?} it was asked for",
                            self.url(),
                            file.path
                        ))
                    })?;
                    if file.is_dir {
                        dirs.push(path);
                        continue;
                    }
                    let url = self.artifact(&root, &path);
                    let what = format!("artifact {path} of MLflow run {run_id}");
                    let response = self.expect(&what, Method::GET, url, Body::None).await?;
                    let (bytes, more) =
                        read_up_to(response, MAX_ARTIFACT_BYTES - total, &what).await?;
                    if more {
                        return Err(Error::Network(format!(
                            "the artifacts of MLflow run {run_id} pass {} MiB (at {path}), more than a lab run holds",
                            MAX_ARTIFACT_BYTES >> 20
                        )));
                    }
                    total += bytes.len() as u64;
                    files.insert(path, bytes);
                }
                match listing.next_page_token {
                    Some(next) if !next.is_empty() => token = next,
                    _ => break,
                }
            }
        }
        if !files.contains_key(META) {
            return Err(Error::invalid(format!(
                "MLflow run {run_id} at {} has no {META} among its artifacts: it was not logged by this lab, so it cannot come back as a run",
                self.url()
            )));
        }
        Run::from_files(files)
    }

    /// The id of the experiment named `name`, created when there is none.
    async fn experiment(&self, name: &str) -> Result<String> {
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::invalid(
                "name the MLflow experiment to log the run in",
            ));
        }
        let what = format!("looking up MLflow experiment {name:?}");
        let url = self.api("experiments/get-by-name", &[("experiment_name", name)]);
        let found: ExperimentReply = match self.send(Method::GET, &url, Body::None).await? {
            Ok(response) => self.json(response, &url).await?,
            Err(refusal) if refusal.code == "RESOURCE_DOES_NOT_EXIST" => {
                let request = json!({ "name": name });
                let url = self.api("experiments/create", &[]);
                match self.send(Method::POST, &url, Body::Json(&request)).await? {
                    Ok(response) => {
                        return Ok(self
                            .json::<CreatedExperiment>(response, &url)
                            .await?
                            .experiment_id)
                    }
                    // another client created it meanwhile
                    Err(refusal) if refusal.code == "RESOURCE_ALREADY_EXISTS" => {
                        self.call(
                            &what,
                            Method::GET,
                            self.api("experiments/get-by-name", &[("experiment_name", name)]),
                            Body::None,
                        )
                        .await?
                    }
                    Err(refusal) => {
                        return Err(self.refused(
                            &format!("creating MLflow experiment {name:?}"),
                            &Method::POST,
                            &url,
                            refusal,
                        ))
                    }
                }
            }
            Err(refusal) => return Err(self.refused(&what, &Method::GET, &url, refusal)),
        };
        if found.experiment.lifecycle_stage == "deleted" {
            return Err(Error::invalid(format!(
                "MLflow experiment {name:?} at {} is deleted: restore it (`mlflow experiments restore`) or log into another experiment",
                self.url()
            )));
        }
        Ok(found.experiment.experiment_id)
    }

    /// Params, metrics and artifacts of a freshly created MLflow run.
    async fn fill(
        &self,
        info: &RunInfo,
        run: &Run,
        on_progress: &mut dyn FnMut(usize, usize),
    ) -> Result<()> {
        let root = self.proxied_root(&info.artifact_uri)?;
        let meta = run.meta();
        let params: Vec<Value> = meta
            .params
            .iter()
            .map(|(k, v)| json!({"key": key(k), "value": truncate(v, MAX_PARAM_VALUE)}))
            .collect();
        for batch in params.chunks(MAX_PARAMS_PER_BATCH) {
            self.log_batch(&info.run_id, "params", batch).await?;
        }

        let metrics: Vec<Value> = run
            .metric_history()?
            .into_iter()
            .map(|p| json!({"key": p.key, "value": number(p.value), "step": p.step, "timestamp": p.timestamp_ms}))
            .collect();
        for batch in metrics.chunks(MAX_METRICS_PER_BATCH) {
            self.log_batch(&info.run_id, "metrics", batch).await?;
        }

        let total = run.files().count();
        on_progress(0, total);
        for (done, (path, bytes)) in run.files().enumerate() {
            let what = format!("uploading {path} of run {}", meta.id);
            self.expect(
                &what,
                Method::PUT,
                self.artifact(&root, path),
                Body::Bytes(bytes),
            )
            .await?;
            on_progress(done + 1, total);
        }
        Ok(())
    }

    /// One `runs/log-batch` of `entries` as `field` (params or metrics).
    async fn log_batch(&self, run_id: &str, field: &str, entries: &[Value]) -> Result<()> {
        let request = json!({ "run_id": run_id, field: entries });
        self.call::<Value>(
            &format!("logging {} {field} to MLflow run {run_id}", entries.len()),
            Method::POST,
            self.api("runs/log-batch", &[]),
            Body::Json(&request),
        )
        .await
        .map(drop)
    }

    /// The path segments of a run's artifact root under the server's artifact proxy.
    fn proxied_root(&self, uri: &str) -> Result<Vec<String>> {
        let rest = uri.strip_prefix(PROXY_SCHEME).ok_or_else(|| {
            Error::invalid(format!(
                "the MLflow tracking server at {} keeps this run's artifacts at {uri}, which it does not serve itself, \
                 so the lab cannot reach them: start it with `mlflow server --serve-artifacts --artifacts-destination <folder or bucket>` \
                 (and log into an experiment created since)",
                self.url()
            ))
        })?;
        // `mlflow-artifacts://host:port/path` names the server too; only the path counts
        let path = match rest.strip_prefix("//") {
            Some(authority_and_path) => authority_and_path.split_once('/').map_or("", |(_, p)| p),
            None => rest,
        };
        let segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if segments.is_empty() || segments.iter().any(|s| s == "." || s == "..") {
            return Err(Error::Network(format!(
                "the MLflow tracking server at {} gave a run the artifact root {uri:?}, which names no folder",
                self.url()
            )));
        }
        Ok(segments)
    }

    /// `{base}/api/2.0/mlflow/{endpoint}?{query}`.
    fn api(&self, endpoint: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.at(["api", "2.0", "mlflow"]
            .into_iter()
            .chain(endpoint.split('/')));
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// The proxy's URL of the artifact at `path` ('/'-separated) under `root`.
    fn artifact(&self, root: &[String], path: &str) -> Url {
        self.at(["api", "2.0", "mlflow-artifacts", "artifacts"]
            .into_iter()
            .chain(root.iter().map(String::as_str))
            .chain(path.split('/')))
    }

    /// The base URL with `segments` appended, each percent-encoded.
    fn at<'a>(&self, segments: impl IntoIterator<Item = &'a str>) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("an http(s) URL has a path")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// A request whose JSON answer is read as `T`; a refusal is an error naming the URL.
    async fn call<T: DeserializeOwned>(
        &self,
        what: &str,
        method: Method,
        url: Url,
        body: Body<'_>,
    ) -> Result<T> {
        let response = self.expect(what, method, url.clone(), body).await?;
        self.json(response, &url).await
    }

    /// A request that must succeed.
    async fn expect(
        &self,
        what: &str,
        method: Method,
        url: Url,
        body: Body<'_>,
    ) -> Result<reqwest::Response> {
        match self.send(method.clone(), &url, body).await? {
            Ok(response) => Ok(response),
            Err(refusal) => Err(self.refused(what, &method, &url, refusal)),
        }
    }

    /// Sends a request (again, after a pause, while the server is busy). `Err` is a server that
    /// cannot be reached; `Ok(Err)` one that refused.
    async fn send(
        &self,
        method: Method,
        url: &Url,
        body: Body<'_>,
    ) -> Result<Result<reqwest::Response, Refusal>> {
        // made once: a retry sends the same bytes without copying them again
        let content = match body {
            Body::None => None,
            Body::Json(value) => Some(("application/json", value.to_string().into())),
            Body::Bytes(bytes) => Some((
                "application/octet-stream",
                bytes::Bytes::copy_from_slice(bytes),
            )),
        };
        let mut wait = Duration::from_millis(500);
        for attempt in 1..=ATTEMPTS {
            let mut request = self.client.request(method.clone(), url.clone());
            if let Some((kind, bytes)) = &content {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, *kind)
                    .body(bytes.clone());
            }
            let response = request
                .send()
                .await
                .map_err(|e| self.unreachable(url, &e))?;
            let status = response.status();
            if status.is_success() {
                return Ok(Ok(response));
            }
            let busy = matches!(status.as_u16(), 429 | 502 | 503 | 504);
            if !busy || attempt == ATTEMPTS {
                return Ok(Err(refusal(response).await));
            }
            sleep(wait).await;
            wait *= 2;
        }
        unreachable!("the last attempt returns")
    }

    /// A successful answer's JSON as `T`.
    async fn json<T: DeserializeOwned>(&self, response: reqwest::Response, url: &Url) -> Result<T> {
        let (bytes, more) =
            read_up_to(response, MAX_JSON_BYTES, &format!("the answer of {url}")).await?;
        if more {
            return Err(Error::Network(format!(
                "{url} answered more than {} MiB of JSON: is {} an MLflow tracking server?",
                MAX_JSON_BYTES >> 20,
                self.url()
            )));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::Network(format!(
                "{url} did not answer as MLflow does ({e}): is {} an MLflow tracking server?",
                self.url()
            ))
        })
    }

    fn unreachable(&self, url: &Url, e: &reqwest::Error) -> Error {
        if e.is_timeout() {
            return Error::Network(format!(
                "the MLflow tracking server at {} did not answer {url} in time: is it overloaded, or behind a slow link?",
                self.url()
            ));
        }
        // the innermost cause says it best ("Connection refused"); in the browser it is a JS
        // TypeError whose text carries a stack: its first line is the message
        let mut cause: &dyn std::error::Error = e;
        while let Some(inner) = cause.source() {
            cause = inner;
        }
        let cause = cause.to_string();
        let cause = cause.lines().next().unwrap_or_default();
        let cause = cause
            .trim_start_matches("JsValue(")
            .trim_start_matches("TypeError: ");
        // in the browser a server that refuses this page's origin (CORS) fails the same way
        let hint = if cfg!(target_arch = "wasm32") {
            ", and does it allow this page's origin (`--cors-allowed-origins`)?"
        } else {
            "?"
        };
        Error::Network(format!(
            "cannot reach the MLflow tracking server at {} (is `mlflow server` running{hint}): {cause}",
            self.url()
        ))
    }

    fn refused(&self, what: &str, method: &Method, url: &Url, refusal: Refusal) -> Error {
        let Refusal {
            status,
            code,
            message,
        } = refusal;
        let reply = match (code.is_empty(), message.is_empty()) {
            (true, true) => String::new(),
            (true, false) => format!(": {message}"),
            (false, _) => format!(": {code}: {message}"),
        };
        // the server's security middleware (MLflow 3.5+) answers 403 with plain text
        let hint = if message.contains("Invalid Host header") {
            format!(
                " (start the server with `--allowed-hosts {}`)",
                url.host_str().unwrap_or("<host>")
            )
        } else if message.contains("Cross-origin request blocked") {
            " (start the server with `--cors-allowed-origins <this page's origin>`)".to_string()
        } else {
            String::new()
        };
        Error::Network(format!(
            "MLflow at {} refused {what}: {method} {url} answered {status}{reply}{hint}",
            self.url()
        ))
    }

    fn too_many(&self, run_id: &str) -> Error {
        Error::Network(format!(
            "MLflow run {run_id} at {} lists more than {MAX_ARTIFACT_ENTRIES} artifacts, more than a lab run holds",
            self.url()
        ))
    }
}

/// The server's reply to a refused request, from at most the first 4 kB of it.
async fn refusal(response: reqwest::Response) -> Refusal {
    #[derive(Deserialize)]
    struct Reply {
        #[serde(default)]
        error_code: String,
        #[serde(default)]
        message: String,
    }
    let status = response.status();
    let bytes = read_up_to(response, MAX_REFUSAL_BYTES, "a refusal")
        .await
        .map(|(b, _)| b)
        .unwrap_or_default();
    match serde_json::from_slice::<Reply>(&bytes) {
        Ok(reply) => Refusal {
            status,
            code: reply.error_code,
            message: reply.message,
        },
        Err(_) => Refusal {
            status,
            code: String::new(),
            message: String::from_utf8_lossy(&bytes)
                .trim()
                .chars()
                .take(500)
                .collect(),
        },
    }
}

/// At most `limit` bytes of a body, and whether it had more (a hostile server may send without end).
async fn read_up_to(
    response: reqwest::Response,
    limit: u64,
    what: &str,
) -> Result<(Vec<u8>, bool)> {
    let url = response.url().clone();
    if response.content_length().is_some_and(|n| n > limit) {
        return Ok((Vec::new(), true));
    }
    let mut stream = response.bytes_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| Error::Network(format!("reading {what} from {url} failed: {e}")))?;
        let room = (limit - out.len() as u64) as usize;
        if chunk.len() > room {
            out.extend_from_slice(&chunk[..room]);
            return Ok((out, true));
        }
        out.extend_from_slice(&chunk);
    }
    Ok((out, false))
}

/// `path` when it is one entry directly inside `dir` (what a listing of `dir` must hold).
fn child(dir: &str, path: &str) -> Option<String> {
    let name = if dir.is_empty() {
        path
    } else {
        path.strip_prefix(dir)?.strip_prefix('/')?
    };
    let plain = !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\']);
    plain.then(|| path.to_string())
}

/// The first `max` characters of `value` (MLflow counts characters, not bytes).
fn truncate(value: &str, max: usize) -> &str {
    value
        .char_indices()
        .nth(max)
        .map_or(value, |(at, _)| &value[..at])
}

/// A metric value as MLflow's JSON reads it: numbers, and NaN and infinities as strings.
fn number(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else if v.is_nan() {
        json!("NaN")
    } else if v > 0.0 {
        json!("Infinity")
    } else {
        json!("-Infinity")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_cut_at_characters_and_non_finite_numbers_are_strings() {
        assert_eq!(truncate("äbc", 2), "äb");
        assert_eq!(truncate("ab", 6000), "ab");
        assert_eq!(number(0.5), json!(0.5));
        assert_eq!(number(f64::NAN), json!("NaN"));
        assert_eq!(number(f64::NEG_INFINITY), json!("-Infinity"));
    }

    #[test]
    fn the_artifact_root_must_be_proxied() {
        let t = Tracking::new("http://127.0.0.1:5000/").unwrap();
        assert_eq!(t.url(), "http://127.0.0.1:5000");
        assert_eq!(
            t.proxied_root("mlflow-artifacts:/1/abc/artifacts").unwrap(),
            ["1", "abc", "artifacts"]
        );
        assert_eq!(
            t.proxied_root("mlflow-artifacts://h:5000/1/abc/artifacts")
                .unwrap(),
            ["1", "abc", "artifacts"]
        );
        let e = t
            .proxied_root("s3://bucket/1/abc/artifacts")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--serve-artifacts") && e.contains("s3://bucket"),
            "{e}"
        );
        assert!(t.proxied_root("mlflow-artifacts:/1/../x").is_err());
        let url = t.artifact(&["1".into(), "abc".into()], "tables/a b#?.csv");
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts/1/abc/tables/a%20b%23%3F.csv"
        );
        let url = t.api("runs/get", &[("run_id", "a&b")]);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:5000/api/2.0/mlflow/runs/get?run_id=a%26b"
        );
    }

    #[test]
    fn a_server_behind_a_path_keeps_it() {
        let t = Tracking::new(" https://example.org/mlflow/ ").unwrap();
        assert_eq!(
            t.api("runs/get", &[]).as_str(),
            "https://example.org/mlflow/api/2.0/mlflow/runs/get"
        );
        for bad in ["ftp://x", "127.0.0.1:5000", "http://x/?a=b", "not a url"] {
            let e = Tracking::new(bad).unwrap_err().to_string();
            assert!(
                e.contains("not an MLflow tracking server's address"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn listings_stay_in_their_folder() {
        assert_eq!(child("", "run.json").as_deref(), Some("run.json"));
        assert_eq!(
            child("tables", "tables/drift.csv").as_deref(),
            Some("tables/drift.csv")
        );
        for (dir, path) in [
            ("", "a/b"),
            ("tables", "other/x"),
            ("tables", "tables/.."),
            ("", ".."),
            ("t", "t/"),
            ("t", "tx/y"),
        ] {
            assert_eq!(child(dir, path), None, "{dir} {path}");
        }
    }
}
