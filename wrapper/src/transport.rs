//! Getting spans and checkpoints to the extension without delaying the response.
//!
//! The handler's path only pushes a message into a channel (well under a microsecond). A
//! background task owns everything slow — msgpack encoding, the HTTP/1.1 keep-alive connection
//! to the extension's trace agent on `127.0.0.1:8126`, the X-Ray datagram — and speaks the
//! protocol of `wire/PROTOCOL.md`:
//!
//! - `POST /ddlambda/v1/hello` first. `200`: an extension that knows the protocol, so each
//!   invocation gets `invocation/start` and its last request carries `ddlambda-invocation-end`.
//!   Any other HTTP answer: a plain trace agent (traces only). No answer: no agent at all, and
//!   spans are written to stdout as `{"traces": [[...]]}` lines.
//! - Per invocation: checkpoints (if any), then `PUT /v0.4/traces`, both with
//!   `ddlambda-request-id`; the end marker goes on the last of them.
//!
//! A failed send is a debug log line: the transport never retries and never fails a handler.
//! The task lives on the tokio runtime that first uses it; if that runtime goes away (one
//! `#[tokio::test]` after another), the next message starts a new task.

use std::io::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use ddlambda_wire::Span;
use ddlambda_wire::invocation::{
    CHECKPOINTS_PATH, END_PATH, HELLO_PATH, Hello, INVOCATION_END_HEADER, InvocationEnd,
    InvocationStart, REQUEST_ID_HEADER, START_PATH,
};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
const TRACES_PATH: &str = "/v0.4/traces";

/// One invocation's telemetry, handed over after the handler's result.
#[derive(Debug, Default)]
pub struct Flushed {
    pub request_id: String,
    /// The invocation's spans (one trace).
    pub spans: Vec<Span>,
    /// Encoded data-streams checkpoints (`wire::checkpoint`), if any were set.
    pub checkpoints: Option<Vec<u8>>,
}

#[derive(Debug)]
enum Message {
    Start(InvocationStart, Option<String>),
    Invocation(Box<Flushed>),
    Barrier(oneshot::Sender<()>),
}

/// The handle the wrapper sends through. Cheap to use from any task.
#[derive(Debug)]
pub struct Transport {
    addr: String,
    enabled: bool,
    sender: Mutex<Option<mpsc::UnboundedSender<Message>>>,
}

impl Transport {
    /// A transport to the trace agent at `addr` (`host:port`). Nothing starts until the
    /// first message. `enabled = false` (`DD_TRACE_ENABLED=false`) drops every span.
    pub fn new(addr: String, enabled: bool) -> Self {
        Self {
            addr,
            enabled,
            sender: Mutex::new(None),
        }
    }

    /// Announces an invocation (ids and start of `aws.lambda`), and the X-Ray metadata
    /// datagram to send for it, if any.
    pub fn start(&self, start: InvocationStart, xray_datagram: Option<String>) {
        if self.enabled || xray_datagram.is_some() {
            self.send(Message::Start(start, xray_datagram));
        }
    }

    /// Hands over one invocation's spans and checkpoints.
    pub fn finish(&self, flushed: Flushed) {
        if self.enabled {
            self.send(Message::Invocation(Box::new(flushed)));
        }
    }

    /// Starts the task (and its hello) now rather than at the first invocation, and waits,
    /// bounded, until the hello is answered.
    pub async fn ready(&self) {
        self.flush().await;
    }

    /// Resolves when every message sent before it has been handled.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.send(Message::Barrier(tx)) {
            let _ = tokio::time::timeout(REQUEST_TIMEOUT * 3, rx).await;
        }
    }

    fn send(&self, message: Message) -> bool {
        let mut guard = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        let message = match guard.as_ref() {
            Some(sender) => match sender.send(message) {
                Ok(()) => return true,
                Err(mpsc::error::SendError(message)) => message,
            },
            None => message,
        };
        // First use, or the runtime that ran the task is gone: start one here.
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::debug!("ddlambda: no tokio runtime; telemetry dropped");
            return false;
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(message);
        handle.spawn(run(self.addr.clone(), rx));
        *guard = Some(tx);
        true
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The ddlambda extension: the full protocol.
    Extension,
    /// A trace agent that does not know the protocol: traces only.
    Agent,
    /// Nothing listening: JSON lines on stdout.
    Stdout,
}

async fn run(addr: String, mut rx: mpsc::UnboundedReceiver<Message>) {
    let mut client = Client::new(addr);
    let hello = Hello {
        runtime: "ddlambda-rust".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let body = serde_json::to_vec(&hello).unwrap_or_default();
    let mode = match client
        .request("POST", HELLO_PATH, "application/json", &[], body)
        .await
    {
        Ok(200) => Mode::Extension,
        Ok(status) => {
            tracing::debug!(
                status,
                "ddlambda: the trace agent does not know the wrapper protocol"
            );
            Mode::Agent
        }
        Err(e) => {
            tracing::debug!("ddlambda: no extension ({e}); spans go to stdout");
            Mode::Stdout
        }
    };
    while let Some(message) = rx.recv().await {
        match message {
            Message::Start(start, datagram) => {
                if let Some(datagram) = datagram
                    && let Err(e) = crate::xray::send_to_daemon(&datagram)
                {
                    tracing::debug!("ddlambda: X-Ray datagram not sent: {e}");
                }
                if mode == Mode::Extension {
                    let body = serde_json::to_vec(&start).unwrap_or_default();
                    client
                        .send("POST", START_PATH, "application/json", &[], body)
                        .await;
                }
            }
            Message::Invocation(flushed) => send_invocation(&mut client, mode, *flushed).await,
            Message::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
}

async fn send_invocation(client: &mut Client, mode: Mode, flushed: Flushed) {
    let Flushed {
        request_id,
        spans,
        checkpoints,
    } = flushed;
    if mode == Mode::Stdout {
        write_stdout(spans);
        return;
    }
    let rid = [(REQUEST_ID_HEADER, request_id.as_str())];
    let end = [
        (REQUEST_ID_HEADER, request_id.as_str()),
        (INVOCATION_END_HEADER, "1"),
    ];
    let last = if mode == Mode::Extension {
        &end[..]
    } else {
        &rid[..]
    };
    if let Some(body) = checkpoints.filter(|_| mode == Mode::Extension) {
        let headers = if spans.is_empty() { last } else { &rid[..] };
        client
            .send(
                "POST",
                CHECKPOINTS_PATH,
                "application/msgpack",
                headers,
                body,
            )
            .await;
    }
    if !spans.is_empty() {
        let body = ddlambda_wire::span::encode_v04(&[spans]);
        client
            .send("PUT", TRACES_PATH, "application/msgpack", last, body)
            .await;
    } else if mode == Mode::Extension {
        let body = serde_json::to_vec(&InvocationEnd { request_id }).unwrap_or_default();
        client
            .send("POST", END_PATH, "application/json", &[], body)
            .await;
    }
}

/// One `{"traces": [[...]]}` line, the shape of ddtrace's log writer.
fn write_stdout(spans: Vec<Span>) {
    if spans.is_empty() {
        return;
    }
    let line = serde_json::json!({ "traces": [spans] });
    let mut text = line.to_string();
    text.push('\n');
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("connect to {0}: {1}")]
    Connect(String, String),
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("bad request: {0}")]
    Request(#[from] http::Error),
    #[error("timed out")]
    Timeout,
}

/// A keep-alive HTTP/1.1 connection to the agent, reopened when it drops.
struct Client {
    addr: String,
    conn: Option<SendRequest<Full<Bytes>>>,
}

impl Client {
    fn new(addr: String) -> Self {
        Self { addr, conn: None }
    }

    /// A request whose failure is only worth a debug line.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) {
        match self
            .request(method, path, content_type, headers, body)
            .await
        {
            Ok(status) if (200..300).contains(&status) => {}
            Ok(status) => tracing::debug!(status, path, "ddlambda: the agent refused a payload"),
            Err(e) => tracing::debug!(path, "ddlambda: send failed: {e}"),
        }
    }

    async fn request(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<u16, SendError> {
        let body = Bytes::from(body);
        // A kept-alive connection the agent has closed fails at once; retry that once on a
        // fresh connection (the request never reached the agent).
        for attempt in 0..2 {
            let reused = self.conn.as_ref().is_some_and(|c| !c.is_closed());
            let conn = match self.conn.as_mut().filter(|c| !c.is_closed()) {
                Some(conn) => conn,
                None => self.conn.insert(connect(&self.addr).await?),
            };
            let mut builder = http::Request::builder()
                .method(method)
                .uri(path)
                .header(http::header::HOST, self.addr.as_str())
                .header(http::header::CONTENT_TYPE, content_type)
                .header("Datadog-Meta-Lang", "rust")
                .header("Datadog-Meta-Tracer-Version", env!("CARGO_PKG_VERSION"));
            if path == TRACES_PATH {
                builder = builder.header("X-Datadog-Trace-Count", "1");
            }
            for (name, value) in headers {
                builder = builder.header(*name, *value);
            }
            let request = builder.body(Full::new(body.clone()))?;
            if conn.ready().await.is_err() {
                self.conn = None;
                continue;
            }
            let sent = tokio::time::timeout(REQUEST_TIMEOUT, async {
                let response = conn.send_request(request).await?;
                let status = response.status().as_u16();
                response.into_body().collect().await?;
                Ok::<_, hyper::Error>(status)
            })
            .await;
            match sent {
                Ok(Ok(status)) => return Ok(status),
                Ok(Err(e)) if reused && attempt == 0 && (e.is_closed() || e.is_canceled()) => {
                    self.conn = None;
                }
                Ok(Err(e)) => {
                    self.conn = None;
                    return Err(e.into());
                }
                Err(_) => {
                    self.conn = None;
                    return Err(SendError::Timeout);
                }
            }
        }
        Err(SendError::Timeout)
    }
}

async fn connect(addr: &str) -> Result<SendRequest<Full<Bytes>>, SendError> {
    let connect_error = |e: String| SendError::Connect(addr.to_owned(), e);
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| connect_error("timed out".into()))?
        .map_err(|e| connect_error(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("ddlambda: agent connection closed: {e}");
        }
    });
    Ok(sender)
}
