//! Log lines carry the ids of the Datadog span they were logged in: `aws.lambda` in the
//! handler's body, the function's own span inside a `tracing` span (as ddtrace's log injection
//! uses the active span).

mod support;

use std::sync::{Arc, Mutex};

use ddlambda::config::Config;
use ddlambda::extract::Chain;
use ddlambda::lambda_runtime::{Context, Error, LambdaEvent};
use ddlambda::streams::StreamsConfig;
use ddlambda::tracing_bridge::{DatadogFields, DatadogFormat, DatadogLayer};
use ddlambda::{TraceIds, Tracer};
use serde_json::{Value, json};
use support::{FakeAgent, by_name};
use tracing::Instrument as _;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, format};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;

#[ddlambda::handler]
async fn handler(_event: LambdaEvent<Value>) -> Result<TraceIds, Error> {
    tracing::info!("in the handler");
    async {
        tracing::info!("in work");
        tracing::info_span!("inner").in_scope(|| tracing::info!("in inner"));
    }
    .instrument(tracing::info_span!("work", step = 1))
    .await;
    tracing::info!("back in the handler");
    Ok(ddlambda::current_ids().ok_or("no invocation")?)
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn lines(&self) -> Vec<String> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }
}

/// A minimal JSON event format, standing in for `fmt::format().json()` (a feature this
/// workspace does not enable).
struct Json;

impl<S, N> FormatEvent<S, N> for Json
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                if f.name() == "message" {
                    self.0 = format!("{v:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        writeln!(writer, "{}", json!({ "message": message.0 }))
    }
}

fn event(request_id: &str) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = request_id.into();
    context.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:logs".into();
    LambdaEvent::new(json!({}), context)
}

/// The `dd.span_id` of the text line containing `message`.
fn text_span_id(lines: &[String], message: &str) -> (u64, u64) {
    let line = lines
        .iter()
        .find(|l| l.contains(message))
        .unwrap_or_else(|| panic!("{message:?} in {lines:#?}"));
    let ids = line
        .strip_prefix("[dd.trace_id=")
        .and_then(|rest| rest.split_once(']'))
        .unwrap_or_else(|| panic!("ids first: {line}"))
        .0;
    let (trace, span) = ids.split_once(" dd.span_id=").unwrap();
    (trace.parse().unwrap(), span.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_carry_the_innermost_span_id() {
    let agent = FakeAgent::start(true).await;
    let config = Config {
        agent_addr: agent.addr.clone(),
        ..Config::default()
    };
    let streams = StreamsConfig {
        enabled: false,
        service: "logs".into(),
        env: "test".into(),
        exchange: None,
    };
    assert!(Tracer::new(config, Chain::new(), streams).install());

    let text = Capture::default();
    let json_lines = Capture::default();
    let (t, j) = (text.clone(), json_lines.clone());
    let subscriber = tracing_subscriber::registry()
        .with(DatadogLayer::new())
        .with(
            tracing_subscriber::fmt::layer()
                .fmt_fields(DatadogFields::new())
                .event_format(DatadogFormat::new(format().without_time()))
                .with_writer(move || t.clone()),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .event_format(DatadogFormat::new(Json))
                .with_writer(move || j.clone()),
        );
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::info!("before the invocation");
    let ids = handler(event("req-logs")).await.unwrap();

    // The spans, to learn the Datadog ids of `work` and `inner`.
    let spans = agent
        .traces_until(Tracer::global(), |t| t.iter().any(|c| !c.is_empty()))
        .await
        .concat();
    let id_of = |name: &str| by_name(&spans, name).span_id;
    let (work, inner) = (id_of("work"), id_of("inner"));
    assert_eq!(id_of("aws.lambda"), ids.span_id);

    let lines = text.lines();
    assert!(
        lines[0].ends_with("before the invocation") && !lines[0].contains("dd.trace_id"),
        "{lines:#?}"
    );
    for (message, span_id) in [
        ("in the handler", ids.span_id),
        ("in work", work),
        ("in inner", inner),
        ("back in the handler", ids.span_id),
    ] {
        assert_eq!(
            text_span_id(&lines, message),
            (ids.trace_id, span_id),
            "{message}"
        );
    }
    // The ids are written once per line; the spans' own fields stay.
    for line in &lines[1..] {
        assert_eq!(line.matches("dd.span_id=").count(), 1, "{line}");
        assert_eq!(line.matches("dd.trace_id=").count(), 1, "{line}");
    }
    let in_work = lines.iter().find(|l| l.contains("in work")).unwrap();
    assert!(
        in_work.contains(" INFO aws.lambda:work{step=1}: "),
        "{in_work}"
    );

    let objects: Vec<Value> = json_lines
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(objects[0], json!({"message": "before the invocation"}));
    assert_eq!(
        objects[2],
        json!({
            "dd": {"trace_id": ids.trace_id.to_string(), "span_id": work.to_string()},
            "message": "in work",
        })
    );
}
