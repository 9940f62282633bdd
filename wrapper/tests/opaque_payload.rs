//! A handler whose payload type is not `Serialize`, run without the layer: the event is not
//! visible, but the invocation still exists — `aws.lambda`, its ids, X-Ray parenting and the
//! produce hooks (trace context and checkpoints).

mod support;

use ddlambda::config::Config;
use ddlambda::extract::Chain;
use ddlambda::lambda_runtime::{Context, Error, LambdaEvent};
use ddlambda::streams::StreamsConfig;
use ddlambda::{TraceIds, Tracer};
use serde::Deserialize;
use serde_json::{Map, Value};
use support::FakeAgent;

/// Deserialize-only, as a request type often is.
#[derive(Debug, Deserialize)]
struct Request {
    count: usize,
}

/// Produces `count` messages: the first in the handler's task, the others in a task it spawns
/// (where the task-local invocation is not visible).
#[ddlambda::handler]
async fn produce(
    event: LambdaEvent<Request>,
) -> Result<(TraceIds, Vec<Map<String, Value>>), Error> {
    let ids = ddlambda::current_ids().ok_or("no invocation inside the handler")?;
    let carrier = || ddlambda::streams::produce_carrier("sqs", "orders", 42).ok_or("no carrier");
    let mut carriers = vec![carrier()?];
    let rest = event.payload.count - 1;
    let spawned = tokio::spawn(async move { (0..rest).map(|_| carrier()).collect::<Vec<_>>() });
    for c in spawned.await? {
        carriers.push(c?);
    }
    Ok((ids, carriers))
}

fn event(request_id: &str, xray: Option<&str>) -> LambdaEvent<Request> {
    let mut context = Context::default();
    context.request_id = request_id.into();
    context.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:producer".into();
    context.xray_trace_id = xray.map(str::to_owned);
    LambdaEvent::new(Request { count: 2 }, context)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opaque_payload_still_traces_and_propagates() {
    let agent = FakeAgent::start(true).await;
    let config = Config {
        agent_addr: agent.addr.clone(),
        ..Config::default()
    };
    let streams = StreamsConfig {
        enabled: true,
        service: "producer".into(),
        env: "test".into(),
        exchange: None,
    };
    let chain = Chain::new().with_merge_xray_traces(true);
    assert!(Tracer::new(config, chain, streams).install());
    let tracer = Tracer::global();

    // A new root.
    let (ids, carriers) = produce(event("req-root", None)).await.unwrap();
    assert_ne!(ids.trace_id, 0);
    assert_eq!(carriers.len(), 2);
    for carrier in &carriers {
        assert_eq!(carrier["x-datadog-trace-id"], ids.trace_id.to_string());
        assert_eq!(carrier["x-datadog-parent-id"], ids.span_id.to_string());
        assert!(carrier.contains_key("dd-pathway-ctx-base64"), "{carrier:?}");
    }

    // X-Ray parents the trace (DD_MERGE_XRAY_TRACES) from the runtime's trace header.
    let xray = "Root=1-5e272390-8c398be037738dc042009320;Parent=94ae789b969f1cc5;Sampled=1";
    let (xray_ids, carriers) = produce(event("req-xray", Some(xray))).await.unwrap();
    assert_eq!(
        carriers[0]["x-datadog-parent-id"],
        xray_ids.span_id.to_string()
    );

    // Without the layer the handler hands its spans over beside the response (a spawned
    // task): wait, boundedly, until both invocations have been handed over and sent.
    let traces = agent.traces_until(tracer, |t| t.len() >= 2).await;
    let lambda = |request_id: &str| {
        traces
            .iter()
            .flatten()
            .find(|s| s.name == "aws.lambda" && s.meta["request_id"] == request_id)
            .cloned()
            .unwrap_or_else(|| panic!("aws.lambda of {request_id} in {traces:?}"))
    };
    let root = lambda("req-root");
    assert_eq!(
        (root.trace_id, root.span_id, root.parent_id),
        (ids.trace_id, ids.span_id, 0)
    );
    let from_xray = lambda("req-xray");
    assert_eq!(from_xray.span_id, xray_ids.span_id);
    assert_eq!(from_xray.parent_id, 0x94ae789b969f1cc5);
    assert_eq!(from_xray.meta["_dd.parent_source"], "xray");

    // The produce checkpoints reached the agent.
    let checkpoints = agent
        .requests()
        .into_iter()
        .filter(|r| r.path == ddlambda::wire::invocation::CHECKPOINTS_PATH)
        .count();
    assert_eq!(checkpoints, 2, "one checkpoints body per invocation");
}
