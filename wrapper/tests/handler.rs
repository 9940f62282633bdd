//! `#[ddlambda::handler]` at run time: signature kept, outcome recorded, panics re-raised.

mod support;

use ddlambda::lambda_runtime::{Context, Error, LambdaEvent};
use serde_json::{Value, json};

#[ddlambda::handler]
async fn echo(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let ids = ddlambda::current_ids().expect("an invocation is current inside the handler");
    assert_ne!(ids.trace_id, 0);
    if event.payload.get("fail").is_some() {
        return Err("asked to fail".into());
    }
    let n = event.payload["n"].as_i64().ok_or("no n")?;
    Ok(json!({ "n": n + 1 }))
}

#[ddlambda::handler]
async fn destructured(
    LambdaEvent { payload, context }: LambdaEvent<String>,
) -> Result<String, Error> {
    Ok(format!("{payload} {}", context.request_id))
}

#[ddlambda::handler]
async fn panics(_event: LambdaEvent<Value>) -> Result<(), Error> {
    panic!("handler exploded");
}

fn event<T>(payload: T) -> LambdaEvent<T> {
    let mut context = Context::default();
    context.request_id = "req-1".into();
    context.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-fn".into();
    LambdaEvent::new(payload, context)
}

#[tokio::test]
async fn decorated_handlers_keep_their_behaviour() {
    let _subscriber = support::own_subscriber();
    assert_eq!(echo(event(json!({"n": 1}))).await.unwrap(), json!({"n": 2}));
    assert_eq!(
        echo(event(json!({"fail": true})))
            .await
            .unwrap_err()
            .to_string(),
        "asked to fail"
    );
    assert_eq!(
        echo(event(json!({}))).await.unwrap_err().to_string(),
        "no n"
    );
    assert_eq!(
        destructured(event("hi".to_owned())).await.unwrap(),
        "hi req-1"
    );
    // Usable where lambda_runtime wants a service.
    let _service = ddlambda::lambda_runtime::service_fn(echo);
}

#[tokio::test]
async fn panics_are_re_raised() {
    let _subscriber = support::own_subscriber();
    let joined = tokio::spawn(panics(event(json!({})))).await;
    let panic = joined.unwrap_err().into_panic();
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"handler exploded"));
}

/// Records the fields of the handler's `aws.lambda` tracing span as a log formatter sees them.
#[derive(Clone, Default)]
struct Fields(std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Fields {
    fn on_record(
        &self,
        _id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        values.record(&mut Visitor(self.clone()));
    }
    fn on_event(
        &self,
        _event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        self.0
            .lock()
            .unwrap()
            .push(("<event>".to_owned(), String::new()));
    }
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        attrs.record(&mut Visitor(self.clone()));
    }
}

struct Visitor(Fields);

impl tracing::field::Visit for Visitor {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0
            .0
            .lock()
            .unwrap()
            .push((field.name().to_owned(), format!("{value:?}")));
    }
}

#[ddlambda::handler]
async fn logs(_event: LambdaEvent<Value>) -> Result<(), Error> {
    tracing::info!("first line");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_carry_dd_trace_and_span_ids() {
    use tracing_subscriber::layer::SubscriberExt as _;

    let fields = Fields::default();
    let subscriber = tracing_subscriber::registry()
        .with(ddlambda::tracing_bridge::DatadogLayer::new())
        .with(fields.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    logs(event(json!({}))).await.unwrap();
    let seen = fields.0.lock().unwrap().clone();
    let get = |name: &str| seen.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let trace_id: u64 = get("dd.trace_id")
        .expect("dd.trace_id recorded")
        .parse()
        .unwrap();
    let span_id: u64 = get("dd.span_id").expect("dd.span_id").parse().unwrap();
    assert_ne!(trace_id, 0);
    assert_ne!(span_id, 0);
    let position = |name: &str| seen.iter().position(|(k, _)| k == name).unwrap();
    assert!(
        position("dd.trace_id") < position("<event>"),
        "the trace id is there before the first log line is formatted: {seen:?}"
    );
}
