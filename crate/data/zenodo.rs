//! The Zenodo client: a record's files and their content, for the page (in the worker) and the
//! CLI alike. Base URL and record are configurable for mirrors and tests.
//!
//! Zenodo facts this follows: `GET /api/records/<id>` lists `files` as `{key, size,
//! checksum: "md5:<hex>", links: {self}}` and `GET /api/records/<id>/files` as `{entries: [{key,
//! size, checksum, links: {content}}]}`; `links.self` is not always a working URL, so content is
//! fetched from `/api/records/<id>/files/<key>/content`, which sends CORS headers but ignores
//! Range. Guests are rate limited (429 with Retry-After).

use serde::Deserialize;

use super::cancel::CancelToken;
use super::http::{get, RetryPolicy};
use crate::{Error, Result};

pub const DEFAULT_BASE: &str = "https://zenodo.org";
/// Raw-Microscopy and Raw-Drone (DOI 10.5281/zenodo.5235536, CC BY 4.0).
pub const DEFAULT_RECORD: &str = "5235536";

/// A file of the record.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteFile {
    pub key: String,
    pub size: u64,
    /// Lower-case hex MD5 when the record states one.
    pub md5: Option<String>,
    pub content_url: String,
}

#[derive(Deserialize)]
struct FileJson {
    key: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    checksum: Option<String>,
}

#[derive(Deserialize)]
struct RecordJson {
    #[serde(default)]
    files: Option<Vec<FileJson>>,
    #[serde(default)]
    entries: Option<Vec<FileJson>>,
}

/// Percent-encodes a file key for a URL path segment.
fn encode_key(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub struct ZenodoClient {
    base: String,
    record: String,
    http: reqwest::Client,
    pub policy: RetryPolicy,
}

impl ZenodoClient {
    pub fn new(base: &str, record: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            record: record.to_string(),
            http: reqwest::Client::new(),
            policy: RetryPolicy::default(),
        }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The record's id.
    pub fn record(&self) -> &str {
        &self.record
    }

    /// The API content URL of a file (CORS, no Range).
    pub fn content_url(&self, key: &str) -> String {
        format!(
            "{}/api/records/{}/files/{}/content",
            self.base,
            self.record,
            encode_key(key)
        )
    }

    /// The record page's file URL (Range, no CORS: usable natively only).
    pub fn ranged_url(&self, key: &str) -> String {
        format!(
            "{}/records/{}/files/{}",
            self.base,
            self.record,
            encode_key(key)
        )
    }

    /// Files from either JSON shape of the API.
    pub fn parse_files(&self, json: &str) -> Result<Vec<RemoteFile>> {
        let record: RecordJson = serde_json::from_str(json)
            .map_err(|e| Error::decode(format!("the file list of record {}", self.record), e))?;
        let files = record.files.or(record.entries).ok_or_else(|| {
            Error::decode(
                format!("record {}", self.record),
                "no 'files' or 'entries' in the answer",
            )
        })?;
        Ok(files
            .into_iter()
            .map(|f| RemoteFile {
                content_url: self.content_url(&f.key),
                md5: f
                    .checksum
                    .and_then(|c| c.strip_prefix("md5:").map(str::to_ascii_lowercase)),
                key: f.key,
                size: f.size,
            })
            .collect())
    }

    /// The record's files: `/api/records/<id>`, else `/api/records/<id>/files`.
    pub async fn list_files(&self, cancel: &CancelToken) -> Result<Vec<RemoteFile>> {
        let record_url = format!("{}/api/records/{}", self.base, self.record);
        let first = async {
            let text = get(&self.http, &record_url, None, self.policy, cancel)
                .await?
                .text()
                .await;
            self.parse_files(&text.map_err(|e| Error::Network(format!("{record_url}: {e}")))?)
        };
        match first.await {
            Ok(files) if !files.is_empty() => Ok(files),
            Err(Error::Cancelled) => Err(Error::Cancelled),
            _ => {
                let url = format!("{record_url}/files");
                let text = get(&self.http, &url, None, self.policy, cancel)
                    .await?
                    .text()
                    .await
                    .map_err(|e| Error::Network(format!("{url}: {e}")))?;
                self.parse_files(&text)
            }
        }
    }

    /// GET `url`, optionally a byte range [start, end), with the client's retry policy.
    pub async fn get(
        &self,
        url: &str,
        range: Option<(u64, u64)>,
        cancel: &CancelToken,
    ) -> Result<reqwest::Response> {
        get(&self.http, url, range, self.policy, cancel).await
    }

    /// Opens a file for reading: by random access where a server answers byte ranges readable
    /// here, else as one stream of the whole file. Natively the record page's URL (Range, no CORS)
    /// is tried first; in the browser only the API's content URL is readable (the other sends no
    /// CORS headers). When the content URL ignores the probe's Range, its answer is the stream
    /// itself, so on Zenodo the probe costs no extra request.
    pub async fn open(
        &self,
        file: &RemoteFile,
        random_access: bool,
        cancel: &CancelToken,
    ) -> Result<Opened> {
        if !random_access {
            return Ok(Opened::Stream(
                self.get(&file.content_url, None, cancel).await?,
            ));
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let url = self.ranged_url(&file.key);
            if let Ok(response) = self.get(&url, Some((0, 1)), cancel).await {
                if let Some(size) = partial_size(&response, file) {
                    return Ok(Opened::Ranged { url, size });
                }
            }
        }
        let response = self.get(&file.content_url, Some((0, 1)), cancel).await?;
        match partial_size(&response, file) {
            Some(size) => Ok(Opened::Ranged {
                url: file.content_url.clone(),
                size,
            }),
            None if response.status() == reqwest::StatusCode::PARTIAL_CONTENT => {
                Err(Error::Network(format!(
                    "{} answered a byte range without saying the file's size",
                    file.content_url
                )))
            }
            None => Ok(Opened::Stream(response)),
        }
    }
}

/// How a file is read.
pub enum Opened {
    /// By byte ranges of `url`, a file of `size` bytes.
    Ranged { url: String, size: u64 },
    /// As one stream: this response's body.
    Stream(reqwest::Response),
}

/// The file's size when `response` answers a byte range: from Content-Range, else (a browser hides
/// Content-Range from other origins unless the server exposes it) from the record's listing.
fn partial_size(response: &reqwest::Response, file: &RemoteFile) -> Option<u64> {
    if response.status() != reqwest::StatusCode::PARTIAL_CONTENT {
        return None;
    }
    response
        .headers()
        .get(reqwest::header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit_once('/'))
        .and_then(|(_, total)| total.trim().parse().ok())
        .or(Some(file.size).filter(|&s| s > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_listing_shapes_and_content_urls() {
        let c = ZenodoClient::new("https://zenodo.org/", "5235536");
        let a = c
            .parse_files(r#"{"files":[{"key":"a b.zip","size":3,"checksum":"md5:ABC","links":{"self":"x"}}]}"#)
            .unwrap();
        assert_eq!(
            a[0].content_url,
            "https://zenodo.org/api/records/5235536/files/a%20b.zip/content"
        );
        assert_eq!(a[0].md5.as_deref(), Some("abc"));
        let b = c
            .parse_files(r#"{"entries":[{"key":"d.zip","size":9,"checksum":"md5:ff","links":{"content":"y"}}]}"#)
            .unwrap();
        assert_eq!((b[0].key.as_str(), b[0].size), ("d.zip", 9));
        assert!(c.parse_files(r#"{"hits":[]}"#).is_err());
        assert!(c
            .parse_files("not json")
            .unwrap_err()
            .to_string()
            .contains("record 5235536"));
    }
}
