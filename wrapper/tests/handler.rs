//! `#[ddlambda::handler]` at run time: signature kept, outcome recorded, panics re-raised.

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
    let joined = tokio::spawn(panics(event(json!({})))).await;
    let panic = joined.unwrap_err().into_panic();
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"handler exploded"));
}
