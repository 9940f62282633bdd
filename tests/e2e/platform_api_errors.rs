//! Bad requests to the platform's APIs get a clear error and change nothing else: the
//! invocation in progress still completes.

use std::time::Duration;

use ddlambda_platform::{InvokeOptions, ShutdownReason, Status};
use ddlambda_tests::http::request;
use ddlambda_tests::platform::{ExtDir, event, with_extensions};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_with_lambdas_errors() {
    let ext = ExtDir::new();
    let platform = with_extensions(&ext, &["e"]).await;
    platform.start().await.expect("start");
    let api = platform.runtime_api().to_string();
    let p = platform.clone();
    let invocation = tokio::spawn(async move {
        p.invoke(event(json!({"sleep_ms": 1500})), InvokeOptions::default())
            .await
    });
    let answers = tokio::task::spawn_blocking(move || {
        let t = Some(Duration::from_secs(30));
        let call = |method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]| {
            let r = request(&api, method, path, headers, body, t).expect("request");
            (
                r.status,
                r.json()["errorType"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        };
        vec![
            call(
                "POST",
                "/2018-06-01/runtime/invocation/not-this-one/response",
                &[],
                b"{}",
            ),
            call(
                "POST",
                "/2018-06-01/runtime/invocation/not-this-one/error",
                &[],
                b"{}",
            ),
            call("POST", "/2018-06-01/runtime/init/error", &[], b"{}"),
            call("GET", "/2020-01-01/extension/event/next", &[], b""),
            call(
                "GET",
                "/2020-01-01/extension/event/next",
                &[("Lambda-Extension-Identifier", "nope")],
                b"",
            ),
            call(
                "POST",
                "/2020-01-01/extension/register",
                &[("Lambda-Extension-Name", "late")],
                br#"{"events":["INVOKE"]}"#,
            ),
            call(
                "POST",
                "/2020-01-01/extension/register",
                &[],
                br#"{"events":["INVOKE"]}"#,
            ),
            call(
                "PUT",
                "/2022-07-01/telemetry",
                &[("Lambda-Extension-Identifier", "nope")],
                b"{}",
            ),
            call("GET", "/2018-06-01/runtime/invocation/nope", &[], b""),
        ]
    })
    .await
    .expect("join");
    let expected = [
        (400, "InvalidRequestID"),
        (400, "InvalidRequestID"),
        (403, "InvalidStateTransition"),
        (403, "Extension.MissingExtensionIdentifier"),
        (403, "Extension.UnknownExtensionIdentifier"),
        (403, "InvalidStateTransition"),
        (400, "InvalidRequest"),
        (403, "Extension.UnknownExtensionIdentifier"),
        (404, "InvalidRequest"),
    ];
    for (got, want) in answers.iter().zip(expected) {
        assert_eq!((got.0, got.1.as_str()), want, "{answers:?}");
    }
    let r = invocation.await.expect("join").expect("invoke");
    assert_eq!(r.report.status, Status::Success, "{r:?}");
    platform.shutdown(ShutdownReason::Spindown).await;
}
