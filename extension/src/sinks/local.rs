//! The local sink (no `DD_API_KEY`): every flushed item as one JSON line, on stdout (readable
//! in CloudWatch or a terminal) or appended to the file `DDLAMBDA_LOCAL_OUTPUT` names.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use super::{SendError, Sink};
use crate::event::{ForwardKind, ForwardPayload, Outgoing};

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

fn forward_line(f: &ForwardPayload) -> Value {
    #[derive(Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        TracerStats,
        PipelineStats,
        Telemetry,
    }
    let kind = match f.kind {
        ForwardKind::TracerStats => Kind::TracerStats,
        ForwardKind::PipelineStats => Kind::PipelineStats,
        ForwardKind::Telemetry => Kind::Telemetry,
    };
    json!({
        "ddlambda": "forward",
        "kind": kind,
        "path": f.path,
        "body_bytes": f.body.len(),
        "body": readable_body(f),
    })
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
    rmp_serde::from_slice::<Value>(bytes).unwrap_or(Value::Null)
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
    use crate::event::TraceBatch;
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
}
