//! Data-streams aggregation throughput in the extension (goal ≥ 1 M checkpoints/s on one
//! core): checkpoints into 10-second buckets with three DDSketches per edge, from decoded
//! batches and from raw `/ddlambda/v1/checkpoints` bodies. Baseline, same run: the bare cost of
//! the three `libdd-ddsketch` adds each checkpoint needs, the floor any aggregation pays.
//!
//! `cargo bench -p ddlambda-extension --bench streams`

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ddlambda_extension::aggregate::streams::{StreamsAggregator, encode_pipeline_stats};
use ddlambda_extension::intake::checkpoints;
use ddlambda_wire::checkpoint::{Checkpoint, CheckpointBatch};
use libdd_ddsketch::DDSketch;

const BATCH: usize = 100;
const BATCHES: usize = 20_000;
const EDGES: u64 = 50;

fn batches() -> Vec<CheckpointBatch> {
    let start = 1_700_000_000_000_000_000i64;
    (0..BATCHES)
        .map(|b| CheckpointBatch {
            service: "orders".into(),
            env: "prod".into(),
            checkpoints: (0..BATCH)
                .map(|i| {
                    let n = (b * BATCH + i) as i64;
                    let edge = n as u64 % EDGES;
                    Checkpoint {
                        edge_tags: vec![
                            "direction:in".into(),
                            format!("topic:queue-{edge}"),
                            "type:sqs".into(),
                        ],
                        hash: 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(edge + 1),
                        parent_hash: edge,
                        // One minute of traffic: six buckets.
                        timestamp_ns: start + n * 30_000,
                        pathway_latency_ns: 1_000_000 + (n % 5000) * 10_000,
                        edge_latency_ns: 500_000 + (n % 3000) * 7_000,
                        payload_size: 100 + (n % 900) as u64,
                    }
                })
                .collect(),
        })
        .collect()
}

fn per_second(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

fn main() {
    let total = BATCH * BATCHES;
    let end = UNIX_EPOCH + Duration::from_secs(1_700_000_100);

    // Baseline: three sketch adds per checkpoint, nothing else.
    let input = batches();
    let mut sketches: Vec<[DDSketch; 3]> = (0..EDGES).map(|_| Default::default()).collect();
    let t = Instant::now();
    for b in &input {
        for cp in &b.checkpoints {
            let s = &mut sketches[cp.parent_hash as usize];
            let _ = s[0].add(cp.pathway_latency_ns as f64 / 1e9);
            let _ = s[1].add(cp.edge_latency_ns as f64 / 1e9);
            let _ = s[2].add(cp.payload_size as f64);
        }
    }
    let floor = per_second(total, t.elapsed());
    black_box(&sketches);

    // Decoded batches into the aggregator.
    let agg = StreamsAggregator::default();
    let t = Instant::now();
    for b in input {
        agg.add_batch(b);
    }
    let aggregate = per_second(total, t.elapsed());
    let t = Instant::now();
    let payloads = agg.take(end, true);
    let bodies: Vec<Vec<u8>> = payloads
        .iter()
        .map(|p| encode_pipeline_stats(p).expect("encodes"))
        .collect();
    let drain = t.elapsed();
    let points: usize = payloads
        .iter()
        .flat_map(|p| &p.buckets)
        .map(|b| b.points.len())
        .sum();

    // Raw bodies, as the trace agent hands them over: decode + aggregate.
    let bodies_in: Vec<Vec<u8>> = batches().iter().map(CheckpointBatch::encode).collect();
    let agg = StreamsAggregator::default();
    let t = Instant::now();
    for body in &bodies_in {
        checkpoints::handle(body, Some("r"), &agg).expect("valid body");
    }
    let handled = per_second(total, t.elapsed());
    black_box(agg.take(SystemTime::now(), true));

    println!("data-streams aggregation, one thread, {total} checkpoints, {EDGES} edges");
    println!(
        "  baseline: 3 sketch adds only       {:>6.2} M/s",
        floor / 1e6
    );
    println!(
        "  aggregate decoded batches          {:>6.2} M/s  ({:.2}x the baseline's time)",
        aggregate / 1e6,
        floor / aggregate
    );
    println!(
        "  decode bodies + aggregate          {:>6.2} M/s  ({:.2}x the baseline's time)",
        handled / 1e6,
        floor / handled
    );
    println!(
        "  drain + encode {points} points into {} payloads: {:.2} ms, {} gzip bytes",
        bodies.len(),
        drain.as_secs_f64() * 1e3,
        bodies.iter().map(Vec::len).sum::<usize>()
    );
}
