//! DogStatsD end to end: the real `datadog` Python client (unbuffered and buffered), the
//! wrapper's `ddlambda::metrics` client and hand-written v1.1 / malformed datagrams, sent to
//! the extension's DogStatsD listener; the aggregated series and sketches are flushed through
//! the Datadog sink to a loopback intake that decodes them (gzip JSON `/api/v2/series`, gzip
//! protobuf `/api/beta/sketches`) and checks exact values.
//!
//! The extension's parts run in-process, as the `datadog-agent` binary wires them.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ddlambda_extension::aggregate::metrics::MetricsAggregator;
use ddlambda_extension::buffer::{Buffer, Scope};
use ddlambda_extension::config::Config;
use ddlambda_extension::flush::enrich::FunctionTags;
use ddlambda_extension::flush::retry::RetryPolicy;
use ddlambda_extension::flush::stats::Counters;
use ddlambda_extension::flush::{Flusher, Trigger};
use ddlambda_extension::intake::dogstatsd;
use ddlambda_extension::sinks::datadog::{DatadogConfig, DatadogSink};
use ddlambda_tests::AbortOnDrop;
use ddlambda_tests::intake::FakeIntake;
use ddlambda_tests::peers_tracer;

/// One context as the intake saw it, points summed across intervals and requests.
#[derive(Debug, Default, Clone, PartialEq)]
struct Seen {
    kind: u64,
    value: f64,
    points: usize,
    timestamps: Vec<i64>,
}

#[derive(Debug, Default, Clone, PartialEq)]
struct SeenSketch {
    cnt: i64,
    sum: f64,
    min: f64,
    max: f64,
    bins: u32,
}

/// `metric|sorted tags` → what arrived.
fn series(intake: &FakeIntake) -> BTreeMap<String, Seen> {
    let mut out: BTreeMap<String, Seen> = BTreeMap::new();
    for body in &intake.series() {
        for s in body["series"].as_array().unwrap() {
            let mut tags: Vec<&str> = s["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap())
                .collect();
            tags.sort_unstable();
            let key = format!("{}|{}", s["metric"].as_str().unwrap(), tags.join(","));
            let e = out.entry(key).or_default();
            e.kind = s["type"].as_u64().unwrap();
            for p in s["points"].as_array().unwrap() {
                e.value += p["value"].as_f64().unwrap();
                e.points += 1;
                e.timestamps.push(p["timestamp"].as_i64().unwrap());
            }
        }
    }
    out
}

fn sketches(intake: &FakeIntake) -> BTreeMap<String, SeenSketch> {
    let mut out: BTreeMap<String, SeenSketch> = BTreeMap::new();
    for payload in &intake.sketches() {
        for s in &payload.sketches {
            let mut tags = s.tags.clone();
            tags.sort_unstable();
            let e = out
                .entry(format!("{}|{}", s.metric, tags.join(",")))
                .or_insert(SeenSketch {
                    min: f64::INFINITY,
                    max: f64::NEG_INFINITY,
                    ..SeenSketch::default()
                });
            for d in &s.dogsketches {
                assert_eq!(d.k.len(), d.n.len(), "one count per bin key");
                assert_eq!(
                    d.n.iter().map(|n| i64::from(*n)).sum::<i64>(),
                    d.cnt,
                    "bins hold every observation"
                );
                e.cnt += d.cnt;
                e.sum += d.sum;
                e.min = e.min.min(d.min);
                e.max = e.max.max(d.max);
                e.bins += u32::try_from(d.k.len()).unwrap();
            }
        }
    }
    out
}

struct Pipeline {
    statsd: SocketAddr,
    metrics: Arc<MetricsAggregator>,
    flusher: Arc<Flusher<DatadogSink>>,
    intake: FakeIntake,
    _server: AbortOnDrop<()>,
}

impl Pipeline {
    async fn start() -> Self {
        let intake = FakeIntake::start().await;

        let env: BTreeMap<&str, String> = BTreeMap::from([
            ("DD_API_KEY", "e2e-key".to_owned()),
            ("DD_DD_URL", intake.base().to_owned()),
            ("AWS_LAMBDA_FUNCTION_NAME", "Metrics-E2E".to_owned()),
            ("AWS_REGION", "eu-west-1".to_owned()),
        ]);
        let (config, _) = Config::from_lookup(|k| env.get(k).cloned());

        let socket = dogstatsd::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let statsd = socket.local_addr().unwrap();
        let metrics = Arc::new(MetricsAggregator::default());
        let listener_task = tokio::spawn(dogstatsd::serve(socket, metrics.clone()));

        let counters = Arc::new(Counters::default());
        let buffer = Arc::new(Buffer::new(1 << 20, true, counters.clone()));
        let sink = DatadogSink::new(DatadogConfig {
            api_key: "e2e-key".to_owned(),
            trace_base: config.trace_intake_base(),
            telemetry_base: config.telemetry_intake_base(),
            metrics_base: config.metrics_intake_base(),
            env: String::new(),
        });
        let flusher = Arc::new(
            Flusher::new(
                buffer,
                sink,
                FunctionTags::new(&config, None),
                counters,
                RetryPolicy::default(),
            )
            .with_drain(metrics.clone()),
        );
        Pipeline {
            statsd,
            metrics,
            flusher,
            intake,
            _server: AbortOnDrop(listener_task),
        }
    }

    /// Waits (bounded) until the listener has parsed `lines` metric lines.
    async fn wait_for_lines(&self, lines: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.metrics.counters.metrics.load(Ordering::Relaxed) < lines
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            self.metrics.counters.metrics.load(Ordering::Relaxed),
            lines,
            "metric lines received"
        );
    }

    async fn flush(&self) {
        self.flusher
            .flush(
                Trigger::Shutdown,
                Scope::All,
                tokio::time::Instant::now() + Duration::from_secs(20),
                true,
            )
            .await;
    }
}

/// The `datadog` 0.56 client's calls: one unbuffered client with a constant tag, one buffered
/// client packing many lines per datagram.
const PYTHON_CLIENT: &str = r#"
import sys
from datadog.dogstatsd.base import DogStatsd

port = int(sys.argv[1])
a = DogStatsd(host="127.0.0.1", port=port, constant_tags=["team:x"], disable_telemetry=True)
a.increment("py.requests", tags=["route:/a"])
a.increment("py.requests", 2, tags=["route:/a"])
a.decrement("py.inflight")
a.gauge("py.temp", 21.5, tags=["room:lab"])
a.gauge("py.temp", 19.0, tags=["room:lab"])
a.histogram("py.latency", 0.25)
a.histogram("py.latency", 0.75)
a.distribution("py.dist", 100, tags=["env:test"])
a.distribution("py.dist", 300, tags=["env:test"])
a.timing("py.timer", 45)
a.set("py.users", "alice")
a.set("py.users", "bob")
a.set("py.users", "alice")
a.event("Deploy", "v1 shipped", alert_type="info")
a.service_check("py.check", 0, message="all good")
a.close_socket()

b = DogStatsd(host="127.0.0.1", port=port, disable_buffering=False, disable_telemetry=True)
b.open_buffer()
for i in range(50):
    b.distribution("py.buffered", i, tags=["mode:buffered"])
b.close_buffer()
b.close_socket()
"#;

/// Metric lines the script sends (events and service checks are not metric lines).
const PYTHON_LINES: u64 = 13 + 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_wrapper_and_hand_written_datagrams_reach_the_intake_exactly() {
    let Some(python) = peers_tracer::python() else {
        return;
    };
    let p = Pipeline::start().await;

    let mut cmd = Command::new(python);
    cmd.arg("-c")
        .arg(PYTHON_CLIENT)
        .arg(p.statsd.port().to_string());
    tokio::task::spawn_blocking(move || peers_tracer::run_workload(cmd, Duration::from_secs(90)))
        .await
        .unwrap()
        .unwrap();

    // The wrapper's client.
    let client = ddlambda::metrics::StatsdClient::connect(p.statsd).unwrap();
    client.distribution("rs.order_value", 42.5, &["currency:eur"]);
    client.distribution("rs.order_value", 7.5, &["currency:eur"]);
    client.count("rs.orders", 3.0, &[]);
    client.gauge("rs.depth", 17.0, &["q:main"]);

    // Hand-written: v1.1 packed values, sample rates, a timestamp, a datagram with bad lines
    // between good ones, and one of random bytes.
    let raw = UdpSocket::bind("127.0.0.1:0").unwrap();
    for datagram in [
        &b"hw.multi:1:2:3|d|#k:v"[..],
        b"hw.multi_h:1.5:20:30|h|@0.5",
        b"hw.sampled:1:2|c|@0.5|#k:v",
        b"hw.ts:5|g|#k:v|T1700000000",
        b"hw.ok:1|c\nhw.bad:abc|c\nhw.bad2|c\n_e{5,4}:title|text|#a\n_sc|hw.check|0\r\nhw.ok:2|c|c:ci-0123|e:it-false|card:high\n",
        b"\xff\xfe\x00garbage|\x01",
    ] {
        raw.send_to(datagram, p.statsd).unwrap();
    }
    let hand_lines = 4 + 2;
    p.wait_for_lines(PYTHON_LINES + 4 + hand_lines).await;
    // Several lines arrived in one datagram (the buffered client, the mixed datagram).
    let c = &p.metrics.counters;
    assert!(c.packets.load(Ordering::Relaxed) < PYTHON_LINES + 4 + hand_lines);
    assert_eq!(c.malformed.load(Ordering::Relaxed), 3);
    assert_eq!(c.events.load(Ordering::Relaxed), 2);
    assert_eq!(c.service_checks.load(Ordering::Relaxed), 2);

    p.flush().await;
    assert!(p.metrics.is_empty(), "a flush takes everything");
    assert!(p.intake.requests().iter().all(|r| r.api_key == "e2e-key"));

    let series = series(&p.intake);
    let count = |key: &str| {
        let s = series
            .get(key)
            .unwrap_or_else(|| panic!("{key} in {series:#?}"));
        assert_eq!(s.kind, 1, "{key} is a count");
        s.value
    };
    let gauge = |key: &str| {
        let s = series
            .get(key)
            .unwrap_or_else(|| panic!("{key} in {series:#?}"));
        assert_eq!(s.kind, 3, "{key} is a gauge");
        s.value
    };
    assert_eq!(count("py.requests|route:/a,team:x"), 3.0);
    assert_eq!(count("py.inflight|team:x"), -1.0);
    assert_eq!(gauge("py.users|team:x"), 2.0);
    assert_eq!(count("rs.orders|"), 3.0);
    assert_eq!(gauge("rs.depth|q:main"), 17.0);
    assert_eq!(count("hw.sampled|k:v"), 6.0);
    assert_eq!(count("hw.ok|"), 3.0);
    let ts = &series["hw.ts|k:v"];
    assert_eq!(
        (ts.kind, ts.value, ts.timestamps.as_slice()),
        (3, 5.0, &[1_700_000_000][..])
    );
    // A gauge keeps its last value per interval (one interval unless the run straddled two).
    let temp = &series["py.temp|room:lab,team:x"];
    assert!(
        temp.value == 19.0 || (temp.points == 2 && temp.value == 40.5),
        "{temp:?}"
    );
    for (key, s) in &series {
        if key.starts_with("py.") || key.starts_with("rs.") || key == "hw.ok|" {
            assert!(
                s.timestamps.iter().all(|t| t % 10 == 0),
                "{key} aligned to 10 s"
            );
        }
    }
    assert!(!series.keys().any(|k| k.starts_with("hw.bad")));

    let sketches = sketches(&p.intake);
    let sketch = |key: &str| {
        sketches
            .get(key)
            .cloned()
            .unwrap_or_else(|| panic!("{key} in {sketches:#?}"))
    };
    let s = sketch("py.latency|team:x");
    assert_eq!((s.cnt, s.sum, s.min, s.max), (2, 1.0, 0.25, 0.75));
    let s = sketch("py.dist|env:test,team:x");
    assert_eq!((s.cnt, s.sum, s.min, s.max), (2, 400.0, 100.0, 300.0));
    let s = sketch("py.timer|team:x");
    assert_eq!((s.cnt, s.sum), (1, 45.0));
    let s = sketch("py.buffered|mode:buffered");
    assert_eq!((s.cnt, s.sum, s.min, s.max), (50, 1225.0, 0.0, 49.0));
    // 0 has its own key; 1..49 spread over distinct bins at 1/128 relative accuracy.
    assert!(s.bins >= 45, "{s:?}");
    let s = sketch("rs.order_value|currency:eur");
    assert_eq!((s.cnt, s.sum, s.min, s.max), (2, 50.0, 7.5, 42.5));
    let s = sketch("hw.multi|k:v");
    assert_eq!((s.cnt, s.sum, s.min, s.max), (3, 6.0, 1.0, 3.0));
    // Each value at rate 0.5 stands for two observations.
    let s = sketch("hw.multi_h|");
    assert_eq!((s.cnt, s.sum, s.min, s.max), (6, 103.0, 1.5, 30.0));
}
