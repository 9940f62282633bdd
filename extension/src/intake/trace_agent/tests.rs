//! The trace agent over real HTTP on a loopback port, fed the payloads real tracers recorded
//! (tests/fixtures/payloads) and every bad body the issue names.

use std::sync::Mutex;

use bytes::Bytes;
use ddlambda_wire::Span;
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use super::*;

const PYTHON_V04: &[u8] = include_bytes!("../../../../tests/fixtures/payloads/python-v04.msgpack");
const PYTHON_V05: &[u8] = include_bytes!("../../../../tests/fixtures/payloads/python-v05.msgpack");
const NODE_V04: &[u8] = include_bytes!("../../../../tests/fixtures/payloads/node-v04.msgpack");

/// Records what the agent pushes; answers with a fixed admission.
struct Recorder {
    events: Mutex<Vec<Event>>,
    admission: Admission,
}

impl Inbox for Recorder {
    fn push(&self, event: Event) -> Admission {
        self.events.lock().unwrap().push(event);
        self.admission
    }
}

struct Agent {
    addr: SocketAddr,
    inbox: Arc<Recorder>,
    agent: Arc<TraceAgent>,
    task: JoinHandle<()>,
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The routes `/info` lists.
fn endpoints(info: &serde_json::Value) -> Vec<&str> {
    info["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .collect()
}

impl Agent {
    async fn start() -> Self {
        Self::start_with(DEFAULT_MAX_BODY_BYTES, Admission::Accepted).await
    }

    async fn start_with(max_body_bytes: usize, admission: Admission) -> Self {
        let config = TraceAgentConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_body_bytes,
        };
        let listener = bind(&config).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let inbox = Arc::new(Recorder {
            events: Mutex::new(Vec::new()),
            admission,
        });
        let agent = Arc::new(TraceAgent::new(&config, inbox.clone()));
        let task = tokio::spawn(serve(listener, agent.clone()));
        Agent {
            addr,
            inbox,
            agent,
            task,
        }
    }

    /// `/info` by `method`: its JSON and its text (it must answer 200).
    async fn info(&self, method: &str) -> (serde_json::Value, String) {
        let (status, body) = self.send(method, "/info", &[], b"").await;
        assert_eq!(status, 200, "{body}");
        (serde_json::from_str(&body).unwrap(), body)
    }

    fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.inbox.events.lock().unwrap())
    }

    fn inner_refused(&self) -> u64 {
        self.agent.refused_too_large()
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::copy_from_slice(body))).unwrap();
        self.exchange(req).await
    }

    async fn exchange<B>(&self, req: Request<B>) -> (u16, String)
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let stream = TcpStream::connect(self.addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

const PYTHON_HEADERS: &[(&str, &str)] = &[
    ("content-type", "application/msgpack"),
    ("datadog-meta-lang", "python"),
    ("datadog-meta-lang-version", "3.11.7"),
    ("datadog-meta-tracer-version", "4.16.0"),
    ("datadog-client-computed-top-level", "true"),
    ("x-datadog-trace-count", "1"),
];

fn traces(event: Event) -> TracePayload {
    match event {
        Event::Traces(p) => p,
        other => panic!("expected traces, got {other:?}"),
    }
}

fn top_level(spans: &[Span]) -> Vec<bool> {
    spans
        .iter()
        .map(|s| s.metrics.get(trace::TOP_LEVEL_KEY) == Some(&1.0))
        .collect()
}

#[tokio::test]
async fn python_v05_and_v04_arrive_decoded_with_the_tracer_headers() {
    let agent = Agent::start().await;
    for (path, body) in [("/v0.5/traces", PYTHON_V05), ("/v0.4/traces", PYTHON_V04)] {
        let (status, reply) = agent.send("POST", path, PYTHON_HEADERS, body).await;
        assert_eq!(status, 200);
        assert_eq!(reply, RATE_BY_SERVICE);
    }
    let events = agent.take();
    assert_eq!(events.len(), 2);
    let mut events = events.into_iter().map(traces);
    let v05 = events.next().unwrap();
    assert_eq!(v05.traces, trace::decode_v05(PYTHON_V05).unwrap());
    assert_eq!(
        (v05.lang.as_str(), v05.lang_version.as_str()),
        ("python", "3.11.7")
    );
    assert_eq!(v05.tracer_version, "4.16.0");
    assert_eq!(v05.body_bytes, PYTHON_V05.len());
    assert_eq!((v05.request_id, v05.end_of_invocation), (None, false));
    let v04 = events.next().unwrap();
    // The tracer computed top level itself: its spans are passed on untouched.
    assert_eq!(v04.traces, trace::decode_v04(PYTHON_V04).unwrap());
}

#[tokio::test]
async fn top_level_is_computed_for_tracers_that_do_not() {
    let agent = Agent::start().await;
    let headers = [
        ("datadog-meta-lang", "nodejs"),
        ("datadog-meta-tracer-version", "5.132.0"),
    ];
    let (status, _) = agent.send("PUT", "/v0.4/traces", &headers, NODE_V04).await;
    assert_eq!(status, 200);
    let payload = traces(agent.take().remove(0));
    // dd-trace marked only its root; the db.query span of another service is top level too.
    assert_eq!(top_level(&payload.traces[0]), [true, true, false]);
    assert_eq!(payload.lang, "nodejs");
}

#[tokio::test]
async fn traces_whose_tracer_computed_stats_are_marked_not_to_be_counted_again() {
    let agent = Agent::start().await;
    let mut headers = PYTHON_HEADERS.to_vec();
    headers.push(("datadog-client-computed-stats", "true"));
    assert_eq!(
        agent
            .send("POST", "/v0.5/traces", &headers, PYTHON_V05)
            .await
            .0,
        200
    );
    assert_eq!(
        agent
            .send("POST", "/v0.5/traces", PYTHON_HEADERS, PYTHON_V05)
            .await
            .0,
        200
    );
    let mut events = agent.take().into_iter().map(traces);
    let computed = events.next().unwrap();
    assert_eq!(computed.traces[0][0].meta[trace::COMPUTE_STATS_KEY], "0");
    assert!(
        computed.traces[0][1..]
            .iter()
            .all(|s| !s.meta.contains_key(trace::COMPUTE_STATS_KEY))
    );
    let plain = events.next().unwrap();
    assert!(
        plain.traces[0]
            .iter()
            .all(|s| !s.meta.contains_key(trace::COMPUTE_STATS_KEY))
    );
}

#[tokio::test]
async fn malformed_bodies_get_a_400_naming_the_problem_and_the_agent_keeps_serving() {
    let agent = Agent::start().await;
    let mut broken = PYTHON_V04.to_vec();
    broken.truncate(broken.len() - 7);
    let (status, reply) = agent
        .send("POST", "/v0.4/traces", PYTHON_HEADERS, &broken)
        .await;
    assert_eq!(status, 400);
    assert!(
        reply.starts_with("malformed v0.4 trace payload: trace 0 span 2"),
        "{reply}"
    );

    // A v0.4 body on the v0.5 route.
    let (status, reply) = agent
        .send("POST", "/v0.5/traces", PYTHON_HEADERS, PYTHON_V04)
        .await;
    assert_eq!(status, 400);
    assert!(reply.contains("[string table, traces]"), "{reply}");

    let (status, reply) = agent
        .send("POST", "/v0.4/traces", PYTHON_HEADERS, b"{\"json\":1}")
        .await;
    assert_eq!(status, 400);
    // `{` is 0x7b, a msgpack positive fixint.
    assert!(
        reply.contains("expected array, found integer (at byte 0)"),
        "{reply}"
    );

    assert!(agent.take().is_empty(), "nothing of a refused body is kept");
    let (status, _) = agent
        .send("POST", "/v0.4/traces", PYTHON_HEADERS, PYTHON_V04)
        .await;
    assert_eq!(status, 200);
    assert_eq!(agent.take().len(), 1);
}

#[tokio::test]
async fn oversized_bodies_get_a_413_declared_or_streamed() {
    let agent = Agent::start_with(1000, Admission::Accepted).await;
    let (status, reply) = agent
        .send("POST", "/v0.4/traces", PYTHON_HEADERS, PYTHON_V04)
        .await;
    assert_eq!(status, 413);
    assert_eq!(
        reply.trim(),
        format!(
            "body of {} bytes is over the 1000-byte limit",
            PYTHON_V04.len()
        )
    );

    // Chunked, no Content-Length: refused once the count passes the cap.
    let req = Request::builder()
        .method("POST")
        .uri("/v0.4/traces")
        .header("host", "127.0.0.1")
        .body(Chunked(
            PYTHON_V04.chunks(300).map(Bytes::copy_from_slice).collect(),
        ))
        .unwrap();
    let (status, reply) = agent.exchange(req).await;
    assert_eq!(status, 413);
    assert_eq!(reply.trim(), "body is over the 1000-byte limit");

    assert!(agent.take().is_empty());
    // Within the cap, the next payload goes through.
    let (status, _) = agent.send("PUT", "/v0.4/traces", &[], &trace_body(3)).await;
    assert_eq!(status, 200);
    assert_eq!(traces(agent.take().pop().unwrap()).traces[0].len(), 3);
}

/// A body of unknown length, so the client sends it chunked.
struct Chunked(std::collections::VecDeque<Bytes>);

impl hyper::body::Body for Chunked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

fn trace_body(spans: u64) -> Vec<u8> {
    let trace: Vec<Span> = (1..=spans)
        .map(|i| Span {
            name: "op".into(),
            service: "svc".into(),
            trace_id: 7,
            span_id: i,
            parent_id: i - 1,
            ..Span::default()
        })
        .collect();
    ddlambda_wire::span::encode_v04(&[trace])
}

#[tokio::test]
async fn info_answers_any_method_and_lists_what_is_served() {
    let agent = Agent::start().await;
    for method in ["GET", "POST", "PUT"] {
        let (info, body) = agent.info(method).await;
        let endpoints = endpoints(&info);
        for e in [
            "/v0.4/traces",
            "/v0.5/traces",
            "/v0.6/stats",
            "/v0.1/pipeline_stats",
        ] {
            assert!(endpoints.contains(&e), "{e} missing from {body}");
        }
        // Without a data-streams aggregator the checkpoints route is not advertised.
        assert!(!endpoints.contains(&CHECKPOINTS_PATH));
        assert_eq!(info["client_drop_p0s"], true);
        assert_eq!(info["config"]["max_request_bytes"], DEFAULT_MAX_BODY_BYTES);
    }
}

#[tokio::test]
async fn unknown_routes_remote_config_and_unwired_checkpoints_are_404() {
    let agent = Agent::start().await;
    for path in ["/v0.7/config", "/v0.3/traces", "/nope", CHECKPOINTS_PATH] {
        let (status, _) = agent.send("POST", path, &[], b"{}").await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) = agent.send("GET", "/v0.4/traces", &[], b"").await;
    assert_eq!(status, 405);
    assert!(agent.take().is_empty());
}

#[tokio::test]
async fn stats_pipeline_stats_and_telemetry_are_kept_byte_for_byte() {
    let agent = Agent::start().await;
    let body = b"\x81\xa8Hostname\xa0 any bytes";
    for (path, status) in [
        ("/v0.6/stats", 202),
        ("/v0.1/pipeline_stats", 202),
        ("/telemetry/proxy/api/v2/apmtelemetry", 202),
    ] {
        let headers = [
            ("dd-telemetry-request-type", "app-started"),
            ("content-encoding", "gzip"),
        ];
        let (got, _) = agent.send("POST", path, &headers, body).await;
        assert_eq!(got, status, "{path}");
    }
    let kinds: Vec<(ForwardKind, String)> = agent
        .take()
        .into_iter()
        .map(|e| match e {
            Event::Forward(f) => {
                assert_eq!(&f.body[..], body);
                assert!(
                    f.headers
                        .iter()
                        .any(|(k, v)| k == "content-encoding" && v == "gzip")
                );
                (f.kind, f.path)
            }
            other => panic!("expected a forward, got {other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (ForwardKind::TracerStats, "/v0.6/stats".to_owned()),
            (
                ForwardKind::PipelineStats,
                "/v0.1/pipeline_stats".to_owned()
            ),
            (ForwardKind::Telemetry, "/api/v2/apmtelemetry".to_owned()),
        ]
    );
}

#[tokio::test]
async fn the_wrappers_signals_and_headers_become_events() {
    let agent = Agent::start().await;
    let hello = r#"{"runtime":"ddlambda-rust","version":"0.1.0"}"#;
    assert_eq!(
        agent
            .send("POST", HELLO_PATH, &[], hello.as_bytes())
            .await
            .0,
        200
    );
    let start = r#"{"request_id":"r1","trace_id":1,"span_id":2,"start_ns":3,"cold_start":true}"#;
    assert_eq!(
        agent
            .send("POST", START_PATH, &[], start.as_bytes())
            .await
            .0,
        200
    );
    let headers = [(REQUEST_ID_HEADER, "r1"), (INVOCATION_END_HEADER, "1")];
    assert_eq!(
        agent
            .send("PUT", "/v0.4/traces", &headers, &trace_body(2))
            .await
            .0,
        200
    );
    let end = r#"{"request_id":"r2"}"#;
    assert_eq!(
        agent.send("POST", END_PATH, &[], end.as_bytes()).await.0,
        200
    );
    // The end header on a forwarded body is its own signal.
    let headers = [(REQUEST_ID_HEADER, "r3"), (INVOCATION_END_HEADER, "1")];
    assert_eq!(
        agent
            .send("POST", "/v0.1/pipeline_stats", &headers, b"x")
            .await
            .0,
        202
    );

    let events = agent.take();
    assert_eq!(events.len(), 6, "{events:?}");
    assert!(
        matches!(&events[0], Event::Wrapper(WrapperSignal::Hello(h)) if h.runtime == "ddlambda-rust")
    );
    assert!(
        matches!(&events[1], Event::Wrapper(WrapperSignal::Start(s)) if s.request_id == "r1" && s.cold_start)
    );
    match &events[2] {
        Event::Traces(p) => {
            assert_eq!(p.request_id.as_deref(), Some("r1"));
            assert!(p.end_of_invocation);
            assert_eq!(p.traces[0].len(), 2);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&events[3], Event::Wrapper(WrapperSignal::End { request_id }) if request_id == "r2")
    );
    assert!(matches!(&events[4], Event::Forward(f) if f.request_id.as_deref() == Some("r3")));
    assert!(
        matches!(&events[5], Event::Wrapper(WrapperSignal::End { request_id }) if request_id == "r3")
    );

    let (status, reply) = agent
        .send("POST", START_PATH, &[], b"{\"request_id\":")
        .await;
    assert_eq!(status, 400);
    assert!(reply.starts_with("malformed JSON body"), "{reply}");
    assert_eq!(agent.send("GET", HELLO_PATH, &[], b"").await.0, 405);
    assert!(agent.take().is_empty());
}

#[tokio::test]
async fn a_refused_last_payload_still_ends_the_invocation() {
    let agent = Agent::start_with(1000, Admission::Dropped).await;
    let end = |id| [(REQUEST_ID_HEADER, id), (INVOCATION_END_HEADER, "1")];
    let bad = agent
        .send("PUT", "/v0.4/traces", &end("malformed"), b"\xc1")
        .await;
    assert_eq!(bad.0, 400);
    let big = agent
        .send("PUT", "/v0.4/traces", &end("oversized"), &[0x90; 2000])
        .await;
    assert_eq!(big.0, 413);
    let dropped = agent
        .send("PUT", "/v0.4/traces", &end("dropped"), &trace_body(1))
        .await;
    assert_eq!(dropped.0, 429);
    let ended: Vec<String> = agent
        .take()
        .into_iter()
        .filter_map(|e| match e {
            Event::Wrapper(WrapperSignal::End { request_id }) => Some(request_id),
            _ => None,
        })
        .collect();
    assert_eq!(ended, ["malformed", "oversized", "dropped"]);
}

#[tokio::test]
async fn a_full_buffer_is_reported_to_the_sender() {
    let agent = Agent::start_with(DEFAULT_MAX_BODY_BYTES, Admission::Dropped).await;
    let (status, reply) = agent
        .send("POST", "/v0.4/traces", PYTHON_HEADERS, PYTHON_V04)
        .await;
    assert_eq!(status, 429);
    assert!(reply.contains("buffer is full"));
}

#[tokio::test]
async fn an_empty_trace_body_is_accepted_as_no_traces() {
    let agent = Agent::start().await;
    let headers = [(REQUEST_ID_HEADER, "r9"), (INVOCATION_END_HEADER, "true")];
    assert_eq!(
        agent.send("PUT", "/v0.4/traces", &headers, b"").await.0,
        200
    );
    let payload = traces(agent.take().remove(0));
    assert!(payload.traces.is_empty());
    assert!(payload.end_of_invocation);
}

#[tokio::test]
async fn a_large_body_is_decoded_off_the_async_workers() {
    let agent = Agent::start().await;
    let body = trace_body(5000);
    assert!(body.len() > DECODE_INLINE_MAX);
    assert_eq!(agent.send("PUT", "/v0.4/traces", &[], &body).await.0, 200);
    assert_eq!(traces(agent.take().remove(0)).traces[0].len(), 5000);
}

/// A profile upload as ddtrace's libdatadog exporter sends it: multipart/form-data.
const PROFILE_CONTENT_TYPE: &str =
    "multipart/form-data; boundary=------------------------a1b2c3d4e5f6";
const PROFILE_BODY: &[u8] = b"--------------------------a1b2c3d4e5f6\r\n\
Content-Disposition: form-data; name=\"event\"; filename=\"event.json\"\r\n\
Content-Type: application/json\r\n\r\n\
{\"attachments\":[\"cpu.pprof\"],\"version\":\"4\"}\r\n\
--------------------------a1b2c3d4e5f6\r\n\
Content-Disposition: form-data; name=\"cpu.pprof\"; filename=\"cpu.pprof\"\r\n\
Content-Type: application/octet-stream\r\n\r\n\
\x00\xff\x1f\x8b binary\r\n\
--------------------------a1b2c3d4e5f6--\r\n";

#[tokio::test]
async fn every_proxied_route_is_kept_byte_for_byte_with_its_headers() {
    let agent = Agent::start().await;
    for route in crate::event::PROXY_ROUTES {
        let headers = [
            ("content-type", PROFILE_CONTENT_TYPE),
            ("x-datadog-evp-subdomain", "llmobs-intake"),
            (REQUEST_ID_HEADER, "r1"),
        ];
        let (status, reply) = agent
            .send("POST", route.local_path, &headers, PROFILE_BODY)
            .await;
        assert_eq!(status, 202, "{}: {reply}", route.local_path);
        let mut events = agent.take();
        assert_eq!(events.len(), 1, "{}", route.local_path);
        let Event::Forward(f) = events.remove(0) else {
            panic!("{}: not a forward", route.local_path);
        };
        assert_eq!(f.kind, ForwardKind::Proxy(route));
        assert_eq!(f.path, route.local_path);
        assert_eq!(&f.body[..], PROFILE_BODY);
        assert_eq!(f.request_id.as_deref(), Some("r1"));
        let header = |name: &str| {
            f.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("content-type"), Some(PROFILE_CONTENT_TYPE));
        assert_eq!(header("x-datadog-evp-subdomain"), Some("llmobs-intake"));
    }
    assert_eq!(agent.inner_refused(), 0);
}

#[tokio::test]
async fn proxied_routes_take_post_only() {
    let agent = Agent::start().await;
    for method in ["GET", "PUT"] {
        let (status, _) = agent
            .send(method, "/profiling/v1/input", &[], PROFILE_BODY)
            .await;
        assert_eq!(status, 405, "{method}");
    }
    assert!(agent.take().is_empty());
    // Near misses are not proxied.
    for path in [
        "/profiling/v1/input/",
        "/evp_proxy/v2/api/v2/other",
        "/debugger/v3/input",
    ] {
        assert_eq!(agent.send("POST", path, &[], b"{}").await.0, 404, "{path}");
    }
}

#[tokio::test]
async fn a_proxied_body_over_its_routes_cap_is_a_counted_413() {
    // The debugger routes' own cap (2 MiB) applies under the agent's 50 MiB.
    let agent = Agent::start().await;
    let big = vec![b'x'; 2 * 1024 * 1024 + 1];
    let (status, reply) = agent.send("POST", "/debugger/v1/input", &[], &big).await;
    assert_eq!(status, 413);
    assert_eq!(
        reply.trim(),
        "body of 2097153 bytes is over the 2097152-byte limit"
    );
    // The profiling route takes the same body: its cap is the agent's.
    let (status, _) = agent.send("POST", "/profiling/v1/input", &[], &big).await;
    assert_eq!(status, 202);
    assert_eq!(agent.take().len(), 1);
    assert_eq!(agent.inner_refused(), 1);

    // The agent-wide cap applies when it is the lower one, streamed bodies included.
    let small = Agent::start_with(1000, Admission::Accepted).await;
    let req = Request::builder()
        .method("POST")
        .uri("/profiling/v1/input")
        .header("host", "127.0.0.1")
        .header("content-type", PROFILE_CONTENT_TYPE)
        .body(Chunked(
            [PROFILE_BODY; 4]
                .concat()
                .chunks(300)
                .map(Bytes::copy_from_slice)
                .collect(),
        ))
        .unwrap();
    let (status, reply) = small.exchange(req).await;
    assert_eq!(status, 413);
    assert_eq!(reply.trim(), "body is over the 1000-byte limit");
    assert!(small.take().is_empty());
    assert_eq!(small.inner_refused(), 1);
}

#[tokio::test]
async fn a_refused_proxied_body_still_ends_the_invocation() {
    let agent = Agent::start_with(100, Admission::Accepted).await;
    let headers = [(REQUEST_ID_HEADER, "r9"), (INVOCATION_END_HEADER, "true")];
    let (status, _) = agent
        .send("POST", "/profiling/v1/input", &headers, PROFILE_BODY)
        .await;
    assert_eq!(status, 413);
    let events = agent.take();
    assert!(
        matches!(&events[..], [Event::Wrapper(WrapperSignal::End { request_id })] if request_id == "r9"),
        "{events:?}"
    );
}

#[tokio::test]
async fn info_lists_the_proxied_routes_as_bottlecap_does() {
    let agent = Agent::start().await;
    let (info, body) = agent.info("GET").await;
    let endpoints = endpoints(&info);
    for e in [
        "/profiling/v1/input",
        "/evp_proxy/v2/api/v2/llmobs",
        "/evp_proxy/v2/api/intake/llm-obs/v1/eval-metric",
        "/evp_proxy/v2/api/intake/llm-obs/v2/eval-metric",
        "/debugger/v1/input",
        "/debugger/v2/input",
        "/debugger/v1/diagnostics",
    ] {
        assert!(endpoints.contains(&e), "{e} missing from {body}");
    }
    // ddtrace's LLMObs proxies through the agent only when an entry contains `/evp_proxy/v2`.
    assert!(endpoints.iter().any(|e| e.contains("/evp_proxy/v2")));
}
