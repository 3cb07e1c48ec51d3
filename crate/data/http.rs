//! HTTP for the data sources, the same code natively (reqwest on tokio) and in the worker
//! (reqwest on fetch): retries with backoff that honour Retry-After on 429 and 5xx, and
//! cancellation between attempts and between chunks.

use std::time::Duration;

use super::cancel::CancelToken;
use crate::{Error, Result};

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    /// The first wait; doubled after each failure unless the server says otherwise.
    pub backoff: Duration,
    /// Longest wait we accept from a Retry-After header.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            backoff: Duration::from_millis(500),
            max_wait: Duration::from_secs(120),
        }
    }
}

pub async fn sleep(d: Duration) {
    #[cfg(target_arch = "wasm32")]
    gloo::timers::future::sleep(d).await;
    #[cfg(not(target_arch = "wasm32"))]
    tokio::time::sleep(d).await;
}

/// Seconds from a Retry-After header (delta-seconds form; an HTTP date falls back to backoff).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A GET with retries. `range` asks for bytes [start, end). Statuses other than 2xx that are not
/// worth retrying come back as errors naming the URL.
pub async fn get(
    client: &reqwest::Client,
    url: &str,
    range: Option<(u64, u64)>,
    policy: RetryPolicy,
    cancel: &CancelToken,
) -> Result<reqwest::Response> {
    let mut wait = policy.backoff;
    let mut last = String::new();
    for attempt in 1..=policy.attempts {
        cancel.check()?;
        let mut request = client.get(url);
        if let Some((start, end)) = range {
            request = request.header(reqwest::header::RANGE, format!("bytes={start}-{}", end - 1));
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => return Ok(response),
            Ok(response) => {
                let status = response.status();
                let retryable =
                    status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                if !retryable {
                    return Err(Error::Network(format!("{url} answered {status}")));
                }
                last = format!("{url} answered {status}");
                if let Some(asked) = retry_after(&response) {
                    if asked > policy.max_wait {
                        return Err(Error::Network(format!(
                            "{last} and asks to wait {} s: try again later",
                            asked.as_secs()
                        )));
                    }
                    wait = asked;
                }
            }
            Err(e) => last = format!("cannot reach {url}: {e}"),
        }
        if attempt < policy.attempts {
            sleep(wait).await;
            wait = (wait * 2).min(policy.max_wait);
        }
    }
    Err(Error::Network(format!(
        "{last} (gave up after {} attempts)",
        policy.attempts
    )))
}

/// The whole body of `url` (a GET with retries), refused past `max` bytes.
pub async fn fetch_bytes(url: &str, max: u64, cancel: &CancelToken) -> Result<Vec<u8>> {
    let client = reqwest::Client::new();
    let response = get(&client, url, None, RetryPolicy::default(), cancel).await?;
    body_within(response, max, url, cancel).await
}

/// A response's body, refused when longer than `max` bytes: before it is read when its
/// Content-Length says so, and while it is read (a missing or lying Content-Length). `what` (a URL,
/// a file) names it in messages.
pub async fn body_within(
    response: reqwest::Response,
    max: u64,
    what: &str,
    cancel: &CancelToken,
) -> Result<Vec<u8>> {
    use futures_util::StreamExt;
    let too_much = |n: u64| {
        Error::Network(format!(
            "{what} sent {n} bytes or more where {max} were expected: refused"
        ))
    };
    if let Some(n) = response.content_length().filter(|&n| n > max) {
        return Err(too_much(n));
    }
    let mut bytes = Vec::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        cancel.check()?;
        let chunk = chunk.map_err(|e| {
            Error::Network(format!("the download of {what} broke off ({e}): try again"))
        })?;
        let n = (bytes.len() + chunk.len()) as u64;
        if n > max {
            return Err(too_much(n));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
