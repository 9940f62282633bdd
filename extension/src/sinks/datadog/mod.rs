//! The Datadog intake: HTTP, headers, compression and status handling. Payload encodings live
//! beside it (`traces.rs`: AgentPayload; `stats.rs`: tracer stats) and in their aggregators;
//! `proxy.rs` resolves where the proxied tracer routes (profiling, debugger, LLMObs) go.
//!
//! Connections are never pooled: Lambda freezes the sandbox between invocations and a pooled
//! socket is stale after a thaw (bottlecap does the same). The HTTP client, whose TLS set-up
//! loads root certificates, is built on first use or by [`Sink::warm_up`], never on the init
//! path.

pub mod proxy;
pub mod stats;
pub mod traces;

use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use http::StatusCode;

use super::{SendError, Sink};
use crate::event::{ForwardKind, ForwardPayload, Outgoing, ProxyRoute};
use crate::secrets::ApiKeyResolver;
use proxy::{ADDITIONAL_TAGS_HEADER, ProxyIntakes};

/// Headers a forwarded tracer request must not pass on: hop-by-hop ones (RFC 9110 §7.6.1),
/// the length (the body is re-sent whole), any key of the tracer's (ours is added), and the
/// wrapper's own protocol headers (wire/PROTOCOL.md), which mean nothing upstream.
const HOP_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "dd-api-key",
    ddlambda_wire::invocation::REQUEST_ID_HEADER,
    ddlambda_wire::invocation::INVOCATION_END_HEADER,
];

/// Where and how to reach the intake.
pub struct DatadogConfig {
    pub api_key: String,
    /// `https://trace.agent.<site>` or `DD_APM_DD_URL`.
    pub trace_base: String,
    /// `https://instrumentation-telemetry-intake.<site>` or `DD_APM_TELEMETRY_DD_URL`.
    pub telemetry_base: String,
    /// `https://api.<site>` or `DD_DD_URL` / `DD_URL`.
    pub metrics_base: String,
    /// `DD_ENV`, set on forwarded stats as the agent env.
    pub env: String,
}

pub struct DatadogSink {
    config: DatadogConfig,
    /// Where the proxied tracer routes go (`DD_SITE` and the overrides).
    proxy: ProxyIntakes,
    client: OnceLock<Result<reqwest::Client, String>>,
    /// `DD_API_KEY_SECRET_ARN`: where the key comes from when `config.api_key` is empty.
    key_resolver: Option<Arc<ApiKeyResolver>>,
}

impl DatadogSink {
    pub fn new(config: DatadogConfig) -> Self {
        Self {
            config,
            proxy: ProxyIntakes::default(),
            client: OnceLock::new(),
            key_resolver: None,
        }
    }

    /// Sends the proxied tracer routes where `intakes` says (`Config::proxy_intakes`); without
    /// it they go to `datadoghq.com`.
    pub fn with_proxy_intakes(mut self, intakes: ProxyIntakes) -> Self {
        self.proxy = intakes;
        self
    }

    /// Takes the API key from Secrets Manager instead of `DatadogConfig::api_key`. Until it
    /// is read, sends fail as retryable, so the flusher keeps their data.
    pub fn with_api_key_resolver(mut self, resolver: Arc<ApiKeyResolver>) -> Self {
        self.key_resolver = Some(resolver);
        self
    }

    fn client(&self) -> Result<&reqwest::Client, SendError> {
        self.client
            .get_or_init(|| crate::http_client(crate::USER_AGENT))
            .as_ref()
            .map_err(|e| SendError::Retryable(format!("HTTP client unavailable: {e}")))
    }

    async fn post(
        &self,
        url: &str,
        headers: Vec<(String, String)>,
        body: impl Into<reqwest::Body>,
        timeout: Duration,
    ) -> Result<(), SendError> {
        let resolved;
        let api_key = match &self.key_resolver {
            Some(r) => {
                resolved = r
                    .key(timeout)
                    .await
                    .map_err(|e| SendError::Retryable(e.to_string()))?;
                &*resolved
            }
            None => self.config.api_key.as_str(),
        };
        let client = self.client()?;
        let mut req = client
            .post(url)
            .timeout(timeout)
            .header("DD-API-KEY", api_key);
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| SendError::from_request(url, &e))?;
        classify(url, resp.status(), resp.headers())
    }
}

/// Maps an intake status to success, retry or refusal (the Go agent's rule plus 429).
pub fn classify(url: &str, status: StatusCode, headers: &http::HeaderMap) -> Result<(), SendError> {
    if status.is_success() {
        Ok(())
    } else if status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        Err(SendError::retryable(
            format!("POST {url}: HTTP {status}"),
            headers,
        ))
    } else {
        Err(SendError::Rejected(format!("POST {url}: HTTP {status}")))
    }
}

/// Gzip at the fast level: flush time matters more than bytes on a loopback-near intake.
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::with_capacity(body.len() / 4 + 64), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(body);
    enc.finish().unwrap_or_default()
}

/// Whether `name` is hop-by-hop or otherwise not to be passed upstream.
pub fn is_hop_header(name: &str) -> bool {
    HOP_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h))
}

fn forwarded_headers(f: &ForwardPayload) -> Vec<(String, String)> {
    f.headers
        .iter()
        .filter(|(k, _)| !is_hop_header(k))
        .cloned()
        .collect()
}

impl DatadogSink {
    /// A proxied tracer request: its body and headers unchanged (a multipart boundary in
    /// `Content-Type` included), hop-by-hop headers dropped, `DD-API-KEY` and the function's
    /// tags added.
    async fn proxied(
        &self,
        route: &ProxyRoute,
        f: &ForwardPayload,
        timeout: Duration,
    ) -> Result<(), SendError> {
        let Some(url) = self.proxy.url(route) else {
            return Err(SendError::Rejected(format!(
                "{}: not a proxied route this sink knows",
                route.local_path
            )));
        };
        let mut theirs = None;
        let mut headers: Vec<(String, String)> = forwarded_headers(f)
            .into_iter()
            .filter(|(k, v)| {
                let tags = k.eq_ignore_ascii_case(ADDITIONAL_TAGS_HEADER);
                if tags {
                    theirs = Some(v.clone());
                }
                !tags
            })
            .collect();
        headers.push((
            ADDITIONAL_TAGS_HEADER.to_owned(),
            self.proxy.additional_tags(theirs.as_deref()),
        ));
        // `Bytes` in, `Bytes` out: a large profile is not copied.
        self.post(url, headers, f.body.clone(), timeout).await
    }
}

impl Sink for DatadogSink {
    async fn send(&self, item: &Outgoing, timeout: Duration) -> Result<(), SendError> {
        match item {
            Outgoing::Traces(batch) => {
                let body = traces::encode(batch);
                let url = format!("{}/api/v0.2/traces", self.config.trace_base);
                let mut headers = vec![
                    (
                        "Content-Type".to_owned(),
                        "application/x-protobuf".to_owned(),
                    ),
                    ("Content-Encoding".to_owned(), "gzip".to_owned()),
                ];
                if !batch.lang.is_empty() {
                    headers.extend([
                        (
                            "X-Datadog-Reported-Languages".to_owned(),
                            batch.lang.clone(),
                        ),
                        ("Datadog-Meta-Lang".to_owned(), batch.lang.clone()),
                        (
                            "Datadog-Meta-Lang-Version".to_owned(),
                            batch.lang_version.clone(),
                        ),
                        (
                            "Datadog-Meta-Tracer-Version".to_owned(),
                            batch.tracer_version.clone(),
                        ),
                    ]);
                }
                self.post(&url, headers, gzip(&body), timeout).await
            }
            Outgoing::Forward(f) => match f.kind {
                ForwardKind::TracerStats => {
                    let body = stats::wrap_client_stats(&f.body, &self.config.env)
                        .map_err(|e| SendError::Rejected(e.to_string()))?;
                    let url = format!("{}/api/v0.2/stats", self.config.trace_base);
                    let mut headers: Vec<_> = forwarded_headers(f)
                        .into_iter()
                        .filter(|(k, _)| {
                            !k.eq_ignore_ascii_case("content-type")
                                && !k.eq_ignore_ascii_case("content-encoding")
                        })
                        .collect();
                    headers.push(("Content-Type".to_owned(), "application/msgpack".to_owned()));
                    headers.push(("Content-Encoding".to_owned(), "gzip".to_owned()));
                    self.post(&url, headers, gzip(&body), timeout).await
                }
                ForwardKind::PipelineStats => {
                    let url = format!("{}/api/v0.1/pipeline_stats", self.config.trace_base);
                    self.post(&url, forwarded_headers(f), f.body.clone(), timeout)
                        .await
                }
                ForwardKind::Telemetry => {
                    let url = format!("{}{}", self.config.telemetry_base, f.path);
                    self.post(&url, forwarded_headers(f), f.body.clone(), timeout)
                        .await
                }
                ForwardKind::Proxy(route) => self.proxied(route, f, timeout).await,
            },
            Outgoing::Series(batch) => {
                let body = crate::aggregate::metrics::series::series_json_body(batch);
                let url = format!("{}/api/v2/series", self.config.metrics_base);
                let headers = vec![
                    ("Content-Type".to_owned(), "application/json".to_owned()),
                    ("Content-Encoding".to_owned(), "gzip".to_owned()),
                ];
                self.post(&url, headers, gzip(&body), timeout).await
            }
            Outgoing::Sketches(batch) => {
                let body = crate::aggregate::metrics::sketches::sketch_payload_protobuf(batch);
                let url = format!("{}/api/beta/sketches", self.config.metrics_base);
                let headers = vec![
                    (
                        "Content-Type".to_owned(),
                        "application/x-protobuf".to_owned(),
                    ),
                    ("Content-Encoding".to_owned(), "gzip".to_owned()),
                ];
                self.post(&url, headers, gzip(&body), timeout).await
            }
            Outgoing::PipelineStats(p) => {
                let body = crate::aggregate::streams::encode_pipeline_stats(p)
                    .map_err(|e| SendError::Rejected(format!("encoding pipeline stats: {e}")))?;
                let url = format!("{}/api/v0.1/pipeline_stats", self.config.trace_base);
                let headers = vec![
                    ("Content-Type".to_owned(), "application/msgpack".to_owned()),
                    ("Content-Encoding".to_owned(), "gzip".to_owned()),
                ];
                self.post(&url, headers, body, timeout).await
            }
        }
    }

    fn warm_up(&self) {
        if let Some(r) = &self.key_resolver {
            r.prefetch();
        }
        let _ = self.client();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        let u = "http://x";
        let none = http::HeaderMap::new();
        assert!(classify(u, StatusCode::ACCEPTED, &none).is_ok());
        for s in [500, 502, 503, 408, 429] {
            assert!(matches!(
                classify(u, StatusCode::from_u16(s).unwrap(), &none),
                Err(SendError::Retryable(_))
            ));
        }
        for s in [400, 403, 404, 413] {
            assert!(matches!(
                classify(u, StatusCode::from_u16(s).unwrap(), &none),
                Err(SendError::Rejected(_))
            ));
        }
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read;
        let body = b"hello hello hello".repeat(100);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gzip(&body)[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn hop_headers_and_api_keys_are_not_forwarded() {
        let f = ForwardPayload {
            kind: ForwardKind::PipelineStats,
            path: "/v0.1/pipeline_stats".into(),
            headers: vec![
                ("Host".into(), "127.0.0.1:8126".into()),
                ("Content-Length".into(), "3".into()),
                ("dd-api-key".into(), "user-key".into()),
                ("Content-Encoding".into(), "gzip".into()),
            ],
            body: bytes::Bytes::from_static(b"abc"),
            request_id: None,
        };
        assert_eq!(
            forwarded_headers(&f),
            vec![("Content-Encoding".to_owned(), "gzip".to_owned())]
        );
    }
}
