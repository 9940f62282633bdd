//! Added response latency per invocation: a 10-record SQS batch through the wrapper vs the
//! bare handler, measured in the same run. Run with `cargo bench -p ddlambda --bench latency`.
//!
//! "Response latency" is everything between the runtime receiving the event bytes and having
//! the response bytes to post: what `lambda_runtime` does per invocation (deserialize the
//! payload, call the handler, serialize the response) plus, for the wrapper, the layer's JSON
//! parse, extraction, span setup and the hand-over to the transport. The transport's own work
//! (encoding, HTTP to the agent) runs on another runtime thread and is not on this path; an
//! in-process agent on its own thread receives the spans, so that work really happens.

use std::convert::Infallible;
use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use bytes::Bytes;
use ddlambda::config::Config;
use ddlambda::extract::Chain;
use ddlambda::lambda_runtime::{Context, Error, LambdaEvent, LambdaInvocation};
use ddlambda::streams::StreamsConfig;
use ddlambda::{DatadogLayer, Tracer};
use serde_json::json;
use tower::{Layer as _, Service as _};

const ROUNDS: usize = 15;
const PER_ROUND: usize = 2_000;

#[ddlambda::handler]
async fn traced(event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    Ok(work(&event.payload))
}

async fn bare_handler(event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    Ok(work(&event.payload))
}

fn work(event: &SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in &event.records {
        if record.body.is_none() {
            response.add_failure(record.message_id.clone().unwrap_or_default());
        }
    }
    response
}

fn batch() -> Bytes {
    let record = |i: u64| {
        let carrier = json!({
            "x-datadog-trace-id": (1_000 + i).to_string(),
            "x-datadog-parent-id": (2_000 + i).to_string(),
            "x-datadog-sampling-priority": "1",
            "x-datadog-tags": "_dd.p.tid=66bcb5eb00000000,_dd.p.dm=-0",
        });
        json!({
            "messageId": format!("059f36b4-87a3-44ab-83d2-66197552811{i}"),
            "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
            "body": format!("{{\"order\": {i}, \"items\": [1, 2, 3], \"customer\": \"c-{i}\"}}"),
            "attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": "1545082649183",
                "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                "ApproximateFirstReceiveTimestamp": "1545082649185"
            },
            "messageAttributes": {"_datadog": {
                "stringValue": carrier.to_string(), "stringListValues": [], "binaryListValues": [],
                "dataType": "String"
            }},
            "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-2:123456789012:my-queue",
            "awsRegion": "us-east-2"
        })
    };
    let event = json!({ "Records": (0..10).map(record).collect::<Vec<_>>() });
    Bytes::from(serde_json::to_vec(&event).expect("event"))
}

fn context(i: usize) -> Context {
    let mut ctx = Context::default();
    ctx.request_id = format!("req-{i}");
    ctx.invoked_function_arn = "arn:aws:lambda:us-east-2:123456789012:function:bench".into();
    ctx
}

/// What lambda_runtime does around a handler: payload in, response bytes out.
async fn runtime_step<F, Fut>(handler: F, body: &Bytes, ctx: Context) -> Vec<u8>
where
    F: Fn(LambdaEvent<SqsEvent>) -> Fut,
    Fut: Future<Output = Result<SqsBatchResponse, Error>>,
{
    let payload: SqsEvent = serde_json::from_slice(body).expect("payload");
    let response = handler(LambdaEvent::new(payload, ctx))
        .await
        .expect("handler");
    serde_json::to_vec(&response).expect("response")
}

/// A trace agent on its own thread that accepts everything.
fn start_sink() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().expect("addr").to_string())
                .expect("send");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|_req| async {
                        Ok::<_, Infallible>(hyper::Response::new(http_body_util::Full::new(
                            Bytes::from_static(b"{}"),
                        )))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    rx.recv().expect("sink address")
}

/// Where the added time goes, step by step (each the median per call over one round).
fn breakdown(rt: &tokio::runtime::Runtime, tracer: &Tracer, body: &Bytes) {
    let time = |f: &mut dyn FnMut()| {
        let mut samples = Vec::with_capacity(PER_ROUND);
        for _ in 0..PER_ROUND {
            let start = Instant::now();
            f();
            samples.push(start.elapsed());
        }
        median(samples).as_secs_f64() * 1e6
    };
    let event: serde_json::Value = serde_json::from_slice(body).expect("json");
    let info = ddlambda::extract::InvocationInfo::default();
    let parse = time(&mut || {
        black_box(serde_json::from_slice::<serde_json::Value>(black_box(body)).ok());
    });
    let decide = time(&mut || {
        black_box(tracer.chain().decide(&event, &info, None));
    });
    let start = rt.block_on(async {
        let mut samples = Vec::with_capacity(PER_ROUND);
        for i in 0..PER_ROUND {
            let ctx = context(i);
            let begin = Instant::now();
            let invocation = ddlambda::Invocation::start(
                tracer,
                Some(&event),
                ddlambda::RuntimeInfo::from_context(&ctx),
            );
            invocation.finish();
            samples.push(begin.elapsed());
            tracer.flush().await;
        }
        median(samples).as_secs_f64() * 1e6
    });
    println!(
        "  breakdown: JSON parse {parse:.2} us, extraction {decide:.2} us, start+finish (incl. extraction) {start:.2} us"
    );
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let sink = start_sink();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let config = Config::from_env();
    println!("resolve_after = {:?}", config.resolve_after);
    let tracer = Tracer::new(
        Config {
            agent_addr: sink,
            resolve_after: config.resolve_after,
            ..Config::default()
        },
        Chain::new(),
        StreamsConfig {
            enabled: false,
            service: "bench".into(),
            env: "none".into(),
            exchange: None,
        },
    );
    let body = batch();

    // The wrapper as `ddlambda::run` composes it: the layer over the runtime's step.
    // When the response bytes exist: the runtime would post them now. What the layer does
    // after that (finishing the spans) is not response latency.
    let responded = std::sync::Arc::new(std::sync::Mutex::new(None::<Instant>));
    let mark = responded.clone();
    let inner = tower::service_fn(move |invocation: LambdaInvocation| {
        let body = invocation.body.clone();
        let mark = mark.clone();
        async move {
            black_box(runtime_step(traced, &body, invocation.context).await);
            *mark.lock().expect("mark") = Some(Instant::now());
            Ok::<(), Error>(())
        }
    });
    let mut layered = DatadogLayer::new(tracer.clone()).layer(inner);
    let parts = http::Response::new(()).into_parts().0;

    // Bare and wrapped invocations alternate, so the machine's load (other builds on a
    // 2-core box) weighs on both alike; medians of per-invocation times.
    let (mut bare, mut wrapped, mut added) = (Vec::new(), Vec::new(), Vec::new());
    rt.block_on(async {
        tracer.transport().ready().await;
        for i in 0..(ROUNDS + 1) * PER_ROUND {
            // Alternate which goes first, so neither always finds the caches warm.
            let mut bare_time = Duration::ZERO;
            if i % 2 == 0 {
                let start = Instant::now();
                black_box(runtime_step(bare_handler, &body, context(i)).await);
                bare_time = start.elapsed();
            }
            let invocation = LambdaInvocation {
                parts: parts.clone(),
                body: body.clone(),
                context: context(i),
            };
            let start = Instant::now();
            layered.call(invocation).await.expect("layered call");
            let done = responded.lock().expect("mark").take().expect("responded");
            let wrapped_time = done - start;
            if i % 2 == 1 {
                let start = Instant::now();
                black_box(runtime_step(bare_handler, &body, context(i)).await);
                bare_time = start.elapsed();
            }
            // Between invocations the sandbox waits for the next event; the transport sends
            // in that gap. Let it, so its work does not compete with the timed path.
            tracer.flush().await;
            if i >= PER_ROUND {
                // The first round warms up (cold start, connection, allocator).
                bare.push(bare_time);
                wrapped.push(wrapped_time);
                added.push(wrapped_time.as_nanos() as i64 - bare_time.as_nanos() as i64);
            }
        }
    });
    breakdown(&rt, &tracer, &body);
    let samples = bare.len();
    let bare = median(bare);
    let wrapped = median(wrapped);
    added.sort_unstable();
    let added_us = added[added.len() / 2] as f64 / 1e3;
    println!(
        "10-record SQS batch ({} bytes), median of {samples} alternating invocations:",
        body.len()
    );
    println!(
        "  bare handler (deserialize, handle, serialize): {:>8.2} us",
        bare.as_secs_f64() * 1e6
    );
    println!(
        "  with ddlambda (layer + #[handler]):            {:>8.2} us",
        wrapped.as_secs_f64() * 1e6
    );
    println!(
        "  added response latency (median of pairs):     {added_us:>8.2} us  (ratio {:.2}x, goal <= 10 us)",
        wrapped.as_secs_f64() / bare.as_secs_f64()
    );
}
