//! The local sink (no `DD_API_KEY`): every flushed item as one JSON line, on stdout (readable
//! in CloudWatch or a terminal) or appended to the file `DDLAMBDA_LOCAL_OUTPUT` names.
//!
//! A forwarded tracer body (stats, telemetry, profiles, debugger snapshots, LLMObs events) is
//! one `{"ddlambda":"forward","kind":…,"path":…,"headers":{…},"body_bytes":…}` line, plus the
//! body in its most readable form: `body` (JSON, or msgpack as JSON, gunzipped if need be),
//! else `parts` (a multipart upload's parts), else `body_base64` up to [`BASE64_BODY_MAX`].

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use super::{SendError, Sink};
use crate::event::{ForwardPayload, Outgoing};

/// Where the lines go.
pub enum LocalSink {
    Stdout,
    File { path: String, file: Mutex<File> },
}

impl LocalSink {
    /// Opens (creating, appending to) `path`, or writes to stdout when `None`.
    pub fn new(path: Option<&str>) -> std::io::Result<Self> {
        match path {
            None | Some("-") => Ok(Self::Stdout),
            Some(p) => {
                let file = OpenOptions::new().create(true).append(true).open(p)?;
                Ok(Self::File {
                    path: p.to_owned(),
                    file: Mutex::new(file),
                })
            }
        }
    }

    fn write_line(&self, line: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(line)?;
                out.flush()
            }
            Self::File { file, .. } => {
                let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
                // One write per line, so concurrent readers never see half a line.
                f.write_all(line)
            }
        }
    }
}

/// The JSON line for one item.
pub fn line(item: &Outgoing) -> Value {
    match item {
        Outgoing::Traces(batch) => json!({
            "ddlambda": "traces",
            "lang": batch.lang,
            "lang_version": batch.lang_version,
            "tracer_version": batch.tracer_version,
            "traces": batch.traces,
        }),
        Outgoing::Forward(f) => forward_line(f),
        Outgoing::PipelineStats(p) => json!({ "ddlambda": "pipeline_stats", "payload": p }),
        Outgoing::Series(b) => json!({ "ddlambda": "series", "payload": b }),
        Outgoing::Sketches(b) => json!({ "ddlambda": "sketches", "payload": b }),
    }
}

/// Bodies that are neither JSON nor msgpack are written out in base64 up to this size; above
/// it only their size (and, for multipart uploads such as profiles, their parts) is shown, so
/// one line stays readable in CloudWatch.
pub const BASE64_BODY_MAX: usize = 64 * 1024;

/// A forwarded body: its kind and path, the headers that would go upstream, and the body in the
/// most readable form it has (see [`readable_body`], [`multipart_parts`], [`BASE64_BODY_MAX`]).
fn forward_line(f: &ForwardPayload) -> Value {
    let headers: serde_json::Map<String, Value> = f
        .headers
        .iter()
        .filter(|(k, _)| !super::datadog::is_hop_header(k))
        .map(|(k, v)| (k.to_ascii_lowercase(), Value::String(v.clone())))
        .collect();
    let mut line = json!({
        "ddlambda": "forward",
        "kind": f.kind.name(),
        "path": f.path,
        "headers": headers,
        "body_bytes": f.body.len(),
    });
    let body = readable_body(f);
    if !body.is_null() {
        line["body"] = body;
    } else if let Some(parts) = multipart_parts(f) {
        line["parts"] = parts;
    } else if !f.body.is_empty() && f.body.len() <= BASE64_BODY_MAX {
        line["body_base64"] = Value::String(BASE64.encode(&f.body));
    }
    line
}

/// The parts of a `multipart/form-data` body (a profile upload): name, file name, type, size,
/// and the content itself when it is JSON (the profile's `event.json`).
fn multipart_parts(f: &ForwardPayload) -> Option<Value> {
    let content_type = header(f, "content-type")?;
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let boundary = params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"'))
    })?;
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = &f.body[find(&f.body, delimiter.as_bytes())? + delimiter.len()..];
    // Each part follows a delimiter line; `--` after the delimiter closes the body.
    while !rest.starts_with(b"--") {
        let next = find(rest, delimiter.as_bytes())?;
        let part = rest[..next]
            .strip_prefix(b"\r\n")
            .and_then(|p| p.strip_suffix(b"\r\n"))?;
        let split = find(part, b"\r\n\r\n")?;
        let (head, content) = (&part[..split], &part[split + 4..]);
        let head = String::from_utf8_lossy(head);
        let mut entry = json!({ "bytes": content.len() });
        for line in head.split("\r\n") {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("content-type") {
                entry["content_type"] = json!(value.trim());
            } else if name.trim().eq_ignore_ascii_case("content-disposition") {
                for param in value.split(';').skip(1) {
                    if let Some((k, v)) = param.split_once('=') {
                        let k = k.trim();
                        if k == "name" || k == "filename" {
                            entry[k] = json!(v.trim().trim_matches('"'));
                        }
                    }
                }
            }
        }
        if let Ok(v) = serde_json::from_slice::<Value>(content) {
            entry["body"] = v;
        }
        parts.push(entry);
        rest = &rest[next + delimiter.len()..];
    }
    Some(Value::Array(parts))
}

fn header<'a>(f: &'a ForwardPayload, name: &str) -> Option<&'a str> {
    f.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The body as JSON when it is JSON or (gzipped) msgpack; `null` otherwise.
fn readable_body(f: &ForwardPayload) -> Value {
    let gzipped = f
        .headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("content-encoding") && v.eq_ignore_ascii_case("gzip"));
    let mut raw = Vec::new();
    let bytes: &[u8] = if gzipped {
        match flate2::read::GzDecoder::new(&f.body[..]).read_to_end(&mut raw) {
            Ok(_) => &raw,
            Err(_) => return Value::Null,
        }
    } else {
        &f.body
    };
    if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
        return v;
    }
    // One whole msgpack value, or nothing: almost any byte starts a msgpack value (a `-` is
    // the integer 45), so a value that leaves bytes over is a misreading of something else.
    let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(bytes));
    match serde::Deserialize::deserialize(&mut de) {
        Ok(v) if de.get_ref().position() == bytes.len() as u64 => v,
        _ => Value::Null,
    }
}

impl Sink for LocalSink {
    async fn send(&self, item: &Outgoing, _timeout: Duration) -> Result<(), SendError> {
        let mut bytes = serde_json::to_vec(&line(item))
            .map_err(|e| SendError::Rejected(format!("not representable as JSON: {e}")))?;
        bytes.push(b'\n');
        self.write_line(&bytes).map_err(|e| {
            let target = match self {
                Self::Stdout => "stdout".to_owned(),
                Self::File { path, .. } => path.clone(),
            };
            SendError::Retryable(format!("writing to {target}: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ForwardKind, TraceBatch};
    use bytes::Bytes;
    use ddlambda_wire::Span;

    #[tokio::test]
    async fn writes_one_json_line_per_item() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let sink = LocalSink::new(Some(path.to_str().unwrap())).unwrap();
        let batch = TraceBatch {
            traces: vec![vec![Span {
                name: "aws.lambda".into(),
                trace_id: 7,
                span_id: 8,
                ..Span::default()
            }]],
            lang: "python".into(),
            ..TraceBatch::default()
        };
        sink.send(&Outgoing::Traces(batch), Duration::from_secs(1))
            .await
            .unwrap();
        let stats = rmp_serde::to_vec_named(&json!({"Stats": [], "Lang": "python"})).unwrap();
        sink.send(
            &Outgoing::Forward(ForwardPayload {
                kind: ForwardKind::TracerStats,
                path: "/v0.6/stats".into(),
                headers: vec![],
                body: Bytes::from(stats),
                request_id: None,
            }),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["ddlambda"], "traces");
        assert_eq!(lines[0]["traces"][0][0]["span_id"], 8);
        assert_eq!(lines[1]["kind"], "tracer_stats");
        assert_eq!(lines[1]["body"]["Lang"], "python");
    }

    fn forward(route: &str, headers: &[(&str, &str)], body: &[u8]) -> Value {
        let route = crate::event::proxy_route(route).unwrap();
        line(&Outgoing::Forward(ForwardPayload {
            kind: ForwardKind::Proxy(route),
            path: route.local_path.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: Bytes::copy_from_slice(body),
            request_id: None,
        }))
    }

    #[test]
    fn a_profile_is_shown_by_its_parts() {
        let body = b"--XyZ\r\n\
Content-Disposition: form-data; name=\"event\"; filename=\"event.json\"\r\n\
Content-Type: application/json\r\n\r\n\
{\"attachments\":[\"cpu.pprof\"]}\r\n\
--XyZ\r\n\
Content-Disposition: form-data; name=\"cpu.pprof\"; filename=\"cpu.pprof\"\r\n\
Content-Type: application/octet-stream\r\n\r\n\
\x1f\x8b\x00\x01\r\n\
--XyZ--\r\n";
        let line = forward(
            "/profiling/v1/input",
            &[
                ("Content-Type", "multipart/form-data; boundary=XyZ"),
                ("Host", "127.0.0.1:8126"),
                ("DD-API-KEY", "tracer-key"),
            ],
            body,
        );
        assert_eq!(line["kind"], "profiling");
        assert_eq!(line["path"], "/profiling/v1/input");
        assert_eq!(line["body_bytes"], body.len());
        assert_eq!(
            line["headers"],
            json!({"content-type": "multipart/form-data; boundary=XyZ"})
        );
        assert_eq!(
            line["parts"],
            json!([
                {"name": "event", "filename": "event.json", "content_type": "application/json",
                 "bytes": 29, "body": {"attachments": ["cpu.pprof"]}},
                {"name": "cpu.pprof", "filename": "cpu.pprof",
                 "content_type": "application/octet-stream", "bytes": 4},
            ])
        );
        assert!(line.get("body_base64").is_none());
    }

    #[test]
    fn llmobs_json_is_shown_as_json_and_other_bodies_in_base64_while_small() {
        let line = forward(
            "/evp_proxy/v2/api/v2/llmobs",
            &[("X-Datadog-EVP-Subdomain", "llmobs-intake")],
            br#"{"_dd.stage":"raw","event_type":"span","spans":[]}"#,
        );
        assert_eq!(line["kind"], "llmobs_spans");
        assert_eq!(line["body"]["event_type"], "span");
        assert_eq!(line["headers"]["x-datadog-evp-subdomain"], "llmobs-intake");

        let line = forward("/debugger/v1/diagnostics", &[], b"\x00\x01not json");
        assert_eq!(line["body_base64"], "AAFub3QganNvbg==");
        // A truncated multipart body is shown in base64 rather than misread.
        let line = forward(
            "/profiling/v1/input",
            &[("content-type", "multipart/form-data; boundary=\"b\"")],
            b"--b\r\nContent-Type: x\r\n\r\nhalf",
        );
        assert!(line.get("parts").is_none());
        assert!(line["body_base64"].is_string());

        let big = vec![0u8; BASE64_BODY_MAX + 1];
        let line = forward("/debugger/v2/input", &[], &big);
        assert_eq!(line["body_bytes"], BASE64_BODY_MAX + 1);
        assert!(line.get("body_base64").is_none() && line.get("body").is_none());
    }
}
