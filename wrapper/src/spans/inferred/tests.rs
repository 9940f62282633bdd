use serde_json::json;

use super::*;
use crate::config::Config;

fn cx(config: &Config) -> InferContext<'_> {
    InferContext {
        config,
        request_id: "req-1",
        now_ns: 42,
        decode_authorizer_context: true,
    }
}

fn infer_default(event: &Value) -> Option<Inferred> {
    let config = Config::default();
    infer(event, EventSource::detect(event), &cx(&config))
}

#[test]
fn utc_timestamps() {
    assert_eq!(parse_utc_timestamp("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(
        parse_utc_timestamp("2022-01-31T14:13:41.637Z"),
        Some(1_643_638_421_637_000_000)
    );
    assert_eq!(
        parse_utc_timestamp("2021-11-04T01:37:45Z"),
        Some(1_635_989_865_000_000_000)
    );
    assert_eq!(parse_utc_timestamp("2021-11-04 01:37:45"), None);
    assert_eq!(parse_utc_timestamp("2021-13-04T01:37:45Z"), None);
    assert_eq!(parse_utc_timestamp("2021-11-04T01:37:45.Z"), None);
}

#[test]
fn sqs_span_as_datadog_lambda_draws_it() {
    // datadog-lambda-python's sqs-string-msg-attribute fixture, trimmed.
    let event = json!({"Records": [{
        "messageId": "c8b3b2ca", "receiptHandle": "AQEBx", "body": "Hello",
        "attributes": {"SentTimestamp": "1634662094538", "SenderId": "AROAYY"},
        "messageAttributes": {}, "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:sa-east-1:601427279990:InferredSpansQueueNode",
        "awsRegion": "sa-east-1"
    }]});
    let inferred = infer_default(&event).unwrap();
    assert!(!inferred.synchronous);
    let [span] = inferred.spans.as_slice() else {
        panic!("one span")
    };
    assert_eq!(span.name, "aws.sqs");
    assert_eq!(span.service, "InferredSpansQueueNode");
    assert_eq!(span.resource, "InferredSpansQueueNode");
    assert_eq!(span.r#type, "web");
    assert_eq!(span.start, 1_634_662_094_538_000_000);
    assert_eq!(span.meta["queuename"], "InferredSpansQueueNode");
    assert_eq!(span.meta["receipt_handle"], "AQEBx");
    assert_eq!(span.meta["sender_id"], "AROAYY");
    assert_eq!(span.meta["_inferred_span.synchronicity"], "async");
    assert_eq!(span.meta["_inferred_span.tag_source"], "self");
    assert_eq!(span.meta["span.kind"], "server");
    assert_eq!(span.metrics[INFERRED_METRIC], 1.0);

    let mapped = Config {
        service_mapping: [("lambda_sqs".to_owned(), "queues".to_owned())].into(),
        ..Config::default()
    };
    let inferred = infer(&event, EventSource::Sqs, &cx(&mapped)).unwrap();
    assert_eq!(inferred.spans[0].service, "queues");
    let off = Config {
        managed_services: false,
        ..Config::default()
    };
    assert!(infer(&event, EventSource::Sqs, &cx(&off)).is_none());
}

#[test]
fn sns_to_sqs_has_an_upstream_sns_span() {
    let body = json!({
        "Type": "Notification", "MessageId": "m-1",
        "TopicArn": "arn:aws:sns:us-east-1:1:my-topic",
        "Timestamp": "2022-01-31T14:13:41.637Z", "Message": "hi"
    });
    let event = json!({"Records": [{
        "receiptHandle": "r", "body": body.to_string(),
        "attributes": {"SentTimestamp": "1643638421700"},
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:my-queue"
    }]});
    let inferred = infer_default(&event).unwrap();
    let [sns, sqs] = inferred.spans.as_slice() else {
        panic!("two spans")
    };
    assert_eq!(
        (sns.name.as_str(), sns.service.as_str()),
        ("aws.sns", "my-topic")
    );
    assert_eq!(sns.start, 1_643_638_421_637_000_000);
    assert_eq!(
        sns.duration, 63_000_000,
        "finishes when SQS received the message"
    );
    assert!(!sns.meta.contains_key("subject"));
    assert_eq!(sqs.name, "aws.sqs");
}

#[test]
fn eventbridge_to_sqs_only_with_datadog_context() {
    let body = |detail: Value| {
        json!({"detail-type": "Order", "source": "my.source", "time": "2023-08-03T22:49:03Z", "detail": detail})
            .to_string()
    };
    let event = |detail: Value| {
        json!({"Records": [{"body": body(detail), "attributes": {"SentTimestamp": "1691102943638"},
            "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:eventbridge-sqs-queue"}]})
    };
    let with = infer_default(&event(json!({"_datadog": {"x-datadog-trace-id": "1"}}))).unwrap();
    assert_eq!(with.spans[0].name, "aws.eventbridge");
    assert_eq!(with.spans[0].service, "my.source");
    assert_eq!(with.spans[1].service, "eventbridge-sqs-queue");
    let without = infer_default(&event(json!({"a": 1}))).unwrap();
    assert_eq!(without.spans.len(), 1);
}

#[test]
fn kinesis_eventbridge_dynamodb_s3() {
    let kinesis = json!({"Records": [{
        "kinesis": {"partitionKey": "pk", "approximateArrivalTimestamp": 1643638425.163, "data": "e30="},
        "eventSource": "aws:kinesis", "eventID": "shardId-000000000002:4962", "eventName": "aws:kinesis:record",
        "eventVersion": "1.0", "eventSourceARN": "arn:aws:kinesis:sa-east-1:1:stream/kinesisStream"
    }]});
    let span = &infer_default(&kinesis).unwrap().spans[0];
    assert_eq!(
        (span.name.as_str(), span.service.as_str()),
        ("aws.kinesis", "kinesisStream")
    );
    assert_eq!(span.start, 1_643_638_425_163_000_000);
    assert_eq!(span.meta["shardid"], "shardId-000000000002");
    assert_eq!(span.meta["partition_key"], "pk");

    let eventbridge = json!({"detail-type": "testdetail", "source": "eventbridge.custom.event.sender",
        "time": "2021-11-04T01:37:45Z", "detail": {}});
    let span = &infer_default(&eventbridge).unwrap().spans[0];
    assert_eq!(span.service, "eventbridge.custom.event.sender");
    assert_eq!(span.start, 1_635_989_865_000_000_000);
    assert_eq!(span.meta["detail_type"], "testdetail");

    let dynamodb = json!({"Records": [{"eventID": "1", "eventName": "INSERT", "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "dynamodb": {"ApproximateCreationDateTime": 1428537600, "SizeBytes": 26, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/ExampleTableWithStream/stream/2015-06-27T00:48:05.899"}]});
    let span = &infer_default(&dynamodb).unwrap().spans[0];
    assert_eq!(span.resource, "ExampleTableWithStream");
    assert_eq!(span.start, 1_428_537_600_000_000_000);
    assert_eq!(span.meta["size_bytes"], "26");

    let s3 = json!({"Records": [{"eventSource": "aws:s3", "eventTime": "1970-01-01T00:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "example-bucket", "arn": "arn:aws:s3:::example-bucket"},
               "object": {"key": "test/key", "size": 1024, "eTag": "0123"}}}]});
    let span = &infer_default(&s3).unwrap().spans[0];
    assert_eq!(
        (span.name.as_str(), span.service.as_str()),
        ("aws.s3", "example-bucket")
    );
    assert_eq!(span.meta["object_size"], "1024");
}

#[test]
fn http_triggers() {
    let rest = json!({"resource": "/{proxy+}", "path": "/path/to/resource", "httpMethod": "POST",
        "headers": {}, "requestContext": {"resourcePath": "/{proxy+}", "stage": "prod",
        "domainName": "70ixmpl4fl.execute-api.us-east-2.amazonaws.com", "apiId": "1234567890",
        "requestTimeEpoch": 1428582896000u64, "identity": {"userAgent": "curl"}}});
    let inferred = infer_default(&rest).unwrap();
    assert!(inferred.synchronous);
    let span = &inferred.spans[0];
    assert_eq!(span.name, "aws.apigateway");
    assert_eq!(
        span.service,
        "70ixmpl4fl.execute-api.us-east-2.amazonaws.com"
    );
    assert_eq!(span.resource, "POST /{proxy+}");
    assert_eq!(span.start, 1_428_582_896_000_000_000);
    assert_eq!(
        span.meta["http.url"],
        "https://70ixmpl4fl.execute-api.us-east-2.amazonaws.com/path/to/resource"
    );
    assert_eq!(span.meta["request_id"], "req-1");

    let mut async_rest = rest.clone();
    async_rest["headers"] = json!({"X-Amz-Invocation-Type": "Event"});
    assert!(!infer_default(&async_rest).unwrap().synchronous);

    let http = json!({"routeKey": "GET /httpapi/get", "rawPath": "/httpapi/get", "headers": {},
        "requestContext": {"apiId": "x02yirxc7a", "domainName": "x02yirxc7a.execute-api.sa-east-1.amazonaws.com",
        "http": {"method": "GET", "path": "/httpapi/get", "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "curl"},
        "stage": "$default", "timeEpoch": 1631212283738u64}});
    let span = &infer_default(&http).unwrap().spans[0];
    assert_eq!(
        (span.name.as_str(), span.resource.as_str()),
        ("aws.httpapi", "GET /httpapi/get")
    );
    assert_eq!(span.start, 1_631_212_283_738_000_000);

    let url = json!({"rawPath": "/", "headers": {}, "requestContext": {"apiId": "a", "stage": "$default",
        "domainName": "a8hyhsshac.lambda-url.eu-south-1.amazonaws.com",
        "http": {"method": "GET", "path": "/"}, "timeEpoch": 1637169449721u64}});
    let span = &infer_default(&url).unwrap().spans[0];
    assert_eq!(
        (span.name.as_str(), span.r#type.as_str()),
        ("aws.lambda.url", "http")
    );
    assert_eq!(
        span.service,
        "a8hyhsshac.lambda-url.eu-south-1.amazonaws.com"
    );

    let alb = json!({"httpMethod": "GET", "path": "/lambda", "headers": {"host": "lb.example.com"},
        "requestContext": {"elb": {"targetGroupArn": "arn:tg"}}});
    let span = &infer_default(&alb).unwrap().spans[0];
    assert_eq!((span.name.as_str(), span.start), ("aws.alb", 42));
    assert_eq!(span.meta["http.url"], "http://lb.example.com/lambda");
    assert_eq!(span.meta["target_group_arn"], "arn:tg");
}

#[test]
fn missing_fields_mean_no_span() {
    let no_timestamp =
        json!({"Records": [{"eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:r:1:q"}]});
    assert!(infer_default(&no_timestamp).is_none());
    assert!(infer_default(&json!({"anything": 1})).is_none());
    assert!(infer_default(&json!([1, 2])).is_none());
}

#[test]
fn python_int_as_datadog_lambda_reads_injected_times() {
    assert_eq!(
        python_int(&json!(1_795_464_698_093_512_345_i64)),
        Some(1_795_464_698_093_512_345)
    );
    assert_eq!(
        python_int(&json!(1_795_464_698_093.75)),
        Some(1_795_464_698_093)
    );
    assert_eq!(python_int(&json!(" 42 ")), Some(42));
    assert_eq!(python_int(&json!("1.5")), None);
    assert_eq!(python_int(&json!(null)), None);
    assert_eq!(python_int(&json!(1e300)), None);
}

/// A REST event whose traced authorizer injected `finish_time` (ns) for this request.
fn authorized_rest(finish_time: Value, latency: Value, request_id: &str) -> Value {
    use base64::Engine;
    let injected = json!({
        "x-datadog-trace-id": "1", "x-datadog-parent-id": "2",
        "x-datadog-parent-span-finish-time": finish_time,
        "x-datadog-authorizing-requestid": "req-a",
    });
    let encoded = base64::engine::general_purpose::STANDARD.encode(injected.to_string());
    json!({"resource": "/r", "path": "/r", "httpMethod": "GET", "headers": {},
        "requestContext": {"resourcePath": "/r", "stage": "prod", "requestId": request_id,
            "domainName": "x.execute-api.us-east-1.amazonaws.com", "apiId": "x",
            "requestTimeEpoch": 1_000_000u64, "identity": {"userAgent": "curl"},
            "authorizer": {"_datadog": encoded, "integrationLatency": latency}}})
}

fn chain(event: &Value, decode: bool) -> Vec<(String, i64, i64)> {
    let config = Config::default();
    let cx = InferContext {
        decode_authorizer_context: decode,
        ..cx(&config)
    };
    infer(event, EventSource::detect(event), &cx)
        .map(|i| {
            i.spans
                .into_iter()
                .map(|s| (s.name, s.start, s.duration))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn authorizer_span_from_finish_time_to_integration_start() {
    let ms = 1_000_000;
    let at = |name: &str, start: i64, duration: i64| (name.to_owned(), start, duration);
    // Finished at 999_990 ms; integration started at 1_000_000 + 5 ms.
    let event = authorized_rest(json!(999_990 * ms), json!(5), "req-a");
    assert_eq!(
        chain(&event, true),
        [
            at("aws.apigateway.authorizer", 999_990 * ms, 15 * ms),
            at("aws.apigateway", 1_000_005 * ms, 0),
        ]
    );
    // Decoding off: no authorizer span, the API span at the request time.
    assert_eq!(
        chain(&event, false),
        [at("aws.apigateway", 1_000_000 * ms, 0)]
    );
    // A later finish wins, and the authorizer span has no length.
    let late = authorized_rest(json!(1_000_007 * ms), json!(5), "req-a");
    assert_eq!(
        chain(&late, true)[0],
        at("aws.apigateway.authorizer", 1_000_007 * ms, 0)
    );
    // Cached (no latency, another request's data) or unusable times: the API span alone.
    for event in [
        authorized_rest(json!(999_990 * ms), json!(0), "req-b"),
        authorized_rest(json!("soon"), json!(5), "req-a"),
        authorized_rest(json!(999_990 * ms), json!("5"), "req-a"),
    ] {
        assert_eq!(
            chain(&event, true),
            [at("aws.apigateway", 1_000_000 * ms, 0)],
            "{event}"
        );
    }
}
