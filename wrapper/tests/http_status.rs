//! `http.status_code` from the handler's response for HTTP triggers (API Gateway, ALB,
//! function URLs), on `aws.lambda` and the inferred span; a 5xx marks `aws.lambda` as an error.

mod support;

use aws_lambda_events::event::apigw::ApiGatewayProxyResponse;
use ddlambda::Tracer;
use ddlambda::config::Config;
use ddlambda::extract::Chain;
use ddlambda::lambda_runtime::{Context, Error, LambdaEvent};
use ddlambda::streams::StreamsConfig;
use ddlambda::wire::Span;
use serde_json::{Value, json};
use support::{FakeAgent, fixture};

/// Answers as the event's `x-answer` header says.
#[ddlambda::handler]
async fn typed(event: LambdaEvent<Value>) -> Result<ApiGatewayProxyResponse, Error> {
    let answer = event.payload["headers"]["x-answer"]
        .as_str()
        .unwrap_or("200");
    if answer == "fail" {
        return Err("backend down".into());
    }
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = answer.parse()?;
    Ok(response)
}

/// A JSON response, with or without `statusCode`.
#[ddlambda::handler]
async fn untyped(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(match event.payload["headers"]["x-answer"].as_str() {
        Some(code) => json!({"statusCode": code.parse::<u16>()?, "body": "x".repeat(4096)}),
        None => json!({"message": "no status"}),
    })
}

fn with_answer(mut event: Value, answer: Option<&str>) -> Value {
    if let Some(answer) = answer {
        event["headers"]["x-answer"] = answer.into();
    }
    event
}

fn event(request_id: &str, payload: Value) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = request_id.into();
    context.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:web".into();
    LambdaEvent::new(payload, context)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_responses_set_the_status_code() {
    let agent = FakeAgent::start(true).await;
    let config = Config {
        agent_addr: agent.addr.clone(),
        ..Config::default()
    };
    let streams = StreamsConfig {
        enabled: false,
        service: "web".into(),
        env: "test".into(),
        exchange: None,
    };
    assert!(Tracer::new(config, Chain::new(), streams).install());

    let api = || fixture("api-gateway-no-trace-headers.json");
    typed(event("ok", with_answer(api(), Some("201"))))
        .await
        .unwrap();
    typed(event("unavailable", with_answer(api(), Some("503"))))
        .await
        .unwrap();
    typed(event("failed", with_answer(api(), Some("fail"))))
        .await
        .unwrap_err();
    untyped(event(
        "json",
        with_answer(fixture("lambda-url.json"), Some("404")),
    ))
    .await
    .unwrap();
    untyped(event("no-status", fixture("lambda-url.json")))
        .await
        .unwrap();
    untyped(event("sqs", fixture("sqs-batch.json")))
        .await
        .unwrap();

    // Without the layer the spans are handed over beside the response: wait, boundedly.
    let spans: Vec<Span> = agent
        .traces_until(Tracer::global(), |t| {
            t.iter()
                .flatten()
                .filter(|s| s.name == "aws.lambda")
                .count()
                == 6
        })
        .await
        .concat();
    let trace = |request_id: &str| -> (Span, Option<Span>) {
        let lambda = spans
            .iter()
            .find(|s| s.name == "aws.lambda" && s.meta["request_id"] == request_id)
            .unwrap_or_else(|| panic!("aws.lambda of {request_id} in {spans:#?}"))
            .clone();
        let inferred = spans
            .iter()
            .find(|s| s.span_id == lambda.parent_id && s.trace_id == lambda.trace_id)
            .cloned();
        (lambda, inferred)
    };
    let status = |span: &Span| span.meta.get("http.status_code").cloned();

    let (lambda, inferred) = trace("ok");
    let inferred = inferred.expect("an aws.apigateway span");
    assert_eq!(inferred.name, "aws.apigateway");
    assert_eq!(status(&lambda).as_deref(), Some("201"));
    assert_eq!(status(&inferred).as_deref(), Some("201"));
    assert_eq!(lambda.error, 0);

    let (lambda, inferred) = trace("unavailable");
    assert_eq!(status(&lambda).as_deref(), Some("503"));
    assert_eq!(status(&inferred.unwrap()).as_deref(), Some("503"));
    assert_eq!(lambda.error, 1, "a 5xx response is an error");

    let (lambda, _) = trace("failed");
    assert_eq!(status(&lambda).as_deref(), Some("502"), "no response");
    assert_eq!(lambda.meta["error.message"], "backend down");

    let (lambda, inferred) = trace("json");
    assert_eq!(inferred.unwrap().name, "aws.lambda.url");
    assert_eq!(status(&lambda).as_deref(), Some("404"));
    assert_eq!(lambda.error, 0);

    let (lambda, _) = trace("no-status");
    assert_eq!(status(&lambda).as_deref(), Some("200"));

    let (lambda, _) = trace("sqs");
    assert_eq!(status(&lambda), None, "not an HTTP trigger");
}
