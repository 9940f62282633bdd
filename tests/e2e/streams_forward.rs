//! A real tracer's own data-streams stats through the extension: ddtrace 4.16.0 (DSM on,
//! process tags off) sets a produce and a consume checkpoint and posts `/v0.1/pipeline_stats`
//! to the extension's trace agent; the flusher forwards the body unchanged to the intake's
//! `/api/v0.1/pipeline_stats` with `DD-API-KEY`. The forwarded payload decodes, and its hashes
//! are the ones `ddlambda_wire::pathway` computes for the same service, env and tags.

use std::process::Command;
use std::time::Duration;

use ddlambda_tests::peers_tracer::run_workload;
use ddlambda_wire::pathway::{node_hash, pathway_hash};

use super::streams_moto::Extension;

const WORKLOAD: &str = r#"
import time
from ddtrace.data_streams import set_consume_checkpoint, set_produce_checkpoint
carrier = {}
set_produce_checkpoint("sqs", "orders-queue", carrier.__setitem__)
time.sleep(0.05)
set_consume_checkpoint("sqs", "orders-queue", carrier.get)
# The stats writer runs every second (_DD_TRACE_STATS_WRITER_INTERVAL) and at exit.
time.sleep(2.5)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddtrace_pipeline_stats_are_forwarded() {
    let Some(python) = ddlambda_tests::peers_tracer::python() else {
        return;
    };
    let ext = Extension::start().await;
    let mut cmd = Command::new(python);
    cmd.args(["-c", WORKLOAD])
        .env("DD_TRACE_AGENT_URL", format!("http://{}", ext.agent_addr))
        .env("DD_DATA_STREAMS_ENABLED", "true")
        .env("DD_EXPERIMENTAL_PROPAGATE_PROCESS_TAGS_ENABLED", "false")
        .env("_DD_TRACE_STATS_WRITER_INTERVAL", "1")
        .env("DD_INSTRUMENTATION_TELEMETRY_ENABLED", "false")
        .env("DD_REMOTE_CONFIGURATION_ENABLED", "false")
        .env("DD_SERVICE", "py-orders")
        .env("DD_ENV", "e2e");
    tokio::task::spawn_blocking(move || run_workload(cmd, Duration::from_secs(60)))
        .await
        .expect("workload thread")
        .expect("the ddtrace workload runs");
    ext.flush(true).await;
    let (requests, payloads): (Vec<_>, Vec<_>) =
        ext.intake.take_pipeline_stats().into_iter().unzip();
    assert!(!payloads.is_empty(), "no forwarded pipeline stats");
    assert!(requests.iter().all(|r| r.api_key == "e2e-key" && r.gzip));
    let points: Vec<_> = payloads
        .iter()
        .inspect(|p| {
            assert_eq!(
                (p.lang.as_str(), p.service.as_str(), p.env.as_str()),
                ("python", "py-orders", "e2e")
            )
        })
        .flat_map(|p| &p.stats)
        .flat_map(|b| &b.stats)
        .collect();
    let edge = |direction: &str| {
        points
            .iter()
            .find(|p| p.edge_tags.contains(&format!("direction:{direction}")))
            .unwrap_or_else(|| panic!("no direction:{direction} point"))
    };
    let (produce, consume) = (edge("out"), edge("in"));
    // ddtrace tags its manual checkpoints; the hash covers every tag, sorted.
    let want_produce = pathway_hash(node_hash("py-orders", "e2e", &produce.edge_tags), 0);
    assert_eq!(produce.hash, want_produce, "{:?}", produce.edge_tags);
    assert_eq!(consume.parent_hash, produce.hash);
    assert_eq!(
        consume.hash,
        pathway_hash(
            node_hash("py-orders", "e2e", &consume.edge_tags),
            produce.hash
        )
    );
    let count = |p: &&&ddlambda_tests::intake::StatsPoint| {
        ddlambda_tests::intake::sketch_count(&p.edge_latency)
    };
    assert_eq!(count(&produce) + count(&consume), 2.0);
}
