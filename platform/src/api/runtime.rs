//! The Runtime API: the function process asks for events and answers them.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use super::{HttpResponse, MAX_PAYLOAD, accepted, body, error, header};
use crate::platform::Shared;
use crate::sandbox::{Answer, Phase};
use crate::timeline::{Actor, EventKind};

/// `GET /2018-06-01/runtime/invocation/next`: long-polls for the next event.
pub(super) async fn next(shared: Arc<Shared>) -> HttpResponse {
    let generation = shared.state.update(|s| {
        // A `/next` while an answer is owed abandons nothing: the invocation stays open
        // until it is answered or times out, as on Lambda.
        // Recorded before the change is published, so the timeline keeps cause before effect.
        shared
            .timeline
            .record(Actor::Runtime, EventKind::Next, None);
        s.runtime.ready = true;
        s.generation
    });
    let pending = shared
        .state
        .wait_for(|s| {
            if s.generation != generation || s.runtime.exited.is_some() {
                return Some(None);
            }
            let p = s.runtime.pending.take()?;
            s.runtime.current = Some(p.request_id.clone());
            shared.timeline.record(
                Actor::Runtime,
                EventKind::EventDelivered,
                Some(&p.request_id),
            );
            Some(Some(p))
        })
        .await;
    let Some(p) = pending else {
        return error(StatusCode::GONE, "Runtime.Reset", "the sandbox was reset");
    };
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", &p.request_id)
        .header("lambda-runtime-deadline-ms", p.deadline_ms.to_string())
        .header(
            "lambda-runtime-invoked-function-arn",
            shared.config.function_arn(),
        )
        .header("lambda-runtime-trace-id", &p.trace_header);
    if let Some(cc) = &p.client_context {
        resp = resp.header("lambda-runtime-client-context", cc);
    }
    if let Some(ci) = &p.cognito_identity {
        resp = resp.header("lambda-runtime-cognito-identity", ci);
    }
    resp.body(Full::new(p.event)).unwrap_or_else(|e| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Runtime.InvalidHeader",
            &format!("cannot send the event: {e}"),
        )
    })
}

/// `POST …/invocation/{id}/response`.
pub(super) async fn response(
    shared: Arc<Shared>,
    id: &str,
    req: Request<Incoming>,
) -> HttpResponse {
    let Some(payload) = body(req, MAX_PAYLOAD).await else {
        let msg = format!(
            "Response payload size exceeded maximum allowed payload size ({MAX_PAYLOAD} bytes)."
        );
        let answer = Answer::Error {
            error_type: "Function.ResponseSizeTooLarge".into(),
            body: serde_json::json!({"errorMessage": msg, "errorType": "Function.ResponseSizeTooLarge"})
                .to_string()
                .into(),
        };
        let kind = EventKind::FunctionError {
            error_type: "Function.ResponseSizeTooLarge".into(),
        };
        return match settle(&shared, id, answer, kind) {
            Ok(()) => error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Function.ResponseSizeTooLarge",
                &msg,
            ),
            Err(resp) => *resp,
        };
    };
    let bytes = payload.len();
    match settle(
        &shared,
        id,
        Answer::Response(payload),
        EventKind::Response { bytes },
    ) {
        Ok(()) => accepted(),
        Err(resp) => *resp,
    }
}

/// `POST …/invocation/{id}/error`.
pub(super) async fn error_report(
    shared: Arc<Shared>,
    id: &str,
    req: Request<Incoming>,
) -> HttpResponse {
    let header_type = header(&req, "lambda-runtime-function-error-type").map(String::from);
    let Some(payload) = body(req, MAX_PAYLOAD).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "error body over 6 MB",
        );
    };
    let error_type = error_type(header_type, &payload);
    let kind = EventKind::FunctionError {
        error_type: error_type.clone(),
    };
    let answer = Answer::Error {
        error_type,
        body: payload,
    };
    match settle(&shared, id, answer, kind) {
        Ok(()) => accepted(),
        Err(resp) => *resp,
    }
}

/// `POST /2018-06-01/runtime/init/error`.
pub(super) async fn init_error(shared: Arc<Shared>, req: Request<Incoming>) -> HttpResponse {
    let header_type = header(&req, "lambda-runtime-function-error-type").map(String::from);
    let payload = body(req, MAX_PAYLOAD).await.unwrap_or_default();
    let error_type = error_type(header_type, &payload);
    let accepted_now = shared.state.update(|s| {
        if s.phase != Phase::Init {
            return false;
        }
        shared.timeline.record(
            Actor::Runtime,
            EventKind::ErrorReported {
                error_type: error_type.clone(),
            },
            None,
        );
        s.runtime.init_error = Some((error_type, payload));
        true
    });
    if !accepted_now {
        return super::error(
            StatusCode::FORBIDDEN,
            "InvalidStateTransition",
            "init/error is only valid during init",
        );
    }
    accepted()
}

/// The error type: the header, else the body's `errorType`, else Lambda's default.
fn error_type(header: Option<String>, body: &Bytes) -> String {
    header
        .filter(|h| !h.is_empty())
        .or_else(|| {
            serde_json::from_slice::<serde_json::Value>(body)
                .ok()?
                .get("errorType")?
                .as_str()
                .map(String::from)
        })
        .unwrap_or_else(|| "Unhandled".into())
}

/// Records the answer to the current invocation, or says why it cannot be accepted.
fn settle(
    shared: &Shared,
    id: &str,
    answer: Answer,
    event: EventKind,
) -> Result<(), Box<HttpResponse>> {
    shared.state.update(|s| {
        if s.runtime.current.as_deref() != Some(id) {
            return Err(Box::new(super::error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestID",
                &format!("{id} is not the invocation in progress"),
            )));
        }
        shared.timeline.record(Actor::Runtime, event, Some(id));
        s.runtime.current = None;
        s.runtime.answer = Some((id.to_string(), answer));
        Ok(())
    })
}
