//! The Extensions API: extensions register, then long-poll for INVOKE and SHUTDOWN.

use std::sync::Arc;

use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::json;

use super::{HttpResponse, accepted, body, error, header, json};
use crate::ids::uuid_v4;
use crate::platform::Shared;
use crate::sandbox::{Extension, Phase};
use crate::timeline::{Actor, EventKind, ExtensionEventKind};

const NAME: &str = "lambda-extension-name";
const ID: &str = "lambda-extension-identifier";
const FEATURES: &str = "lambda-extension-accept-feature";

/// `POST /2020-01-01/extension/register`.
pub(super) async fn register(shared: Arc<Shared>, req: Request<Incoming>) -> HttpResponse {
    let Some(name) = header(&req, NAME)
        .map(String::from)
        .filter(|n| !n.is_empty())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "missing Lambda-Extension-Name header",
        );
    };
    let account_id_feature =
        header(&req, FEATURES).is_some_and(|f| f.split(',').any(|f| f.trim() == "accountId"));
    let Some(raw) = body(req, 64 * 1024).await else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "unreadable register body",
        );
    };
    let events: Vec<String> = match serde_json::from_slice::<serde_json::Value>(&raw) {
        Ok(v) => match v
            .get("events")
            .map(|e| serde_json::from_value::<Vec<String>>(e.clone()))
        {
            Some(Ok(events)) => events,
            None => Vec::new(),
            Some(Err(e)) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequest",
                    &format!("events: {e}"),
                );
            }
        },
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                &format!("register body is not JSON: {e}"),
            );
        }
    };
    if let Some(bad) = events.iter().find(|e| *e != "INVOKE" && *e != "SHUTDOWN") {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidEventType",
            &format!("unknown event type {bad}"),
        );
    }
    let id = uuid_v4();
    let registered = shared.state.update(|s| {
        if s.phase != Phase::Init {
            return Err((
                StatusCode::FORBIDDEN,
                "InvalidStateTransition",
                "extensions register during init only",
            ));
        }
        let idx = match s.extensions.iter().position(|e| e.name == name) {
            Some(i) if s.extensions[i].id.is_some() => {
                return Err((
                    StatusCode::CONFLICT,
                    "Extension.AlreadyRegistered",
                    "an extension of this name is registered",
                ));
            }
            Some(i) => i,
            // Not a file in /opt/extensions: an internal extension, from the function process.
            None => {
                s.extensions.push(Extension::new(name.clone(), false));
                s.extensions.len() - 1
            }
        };
        let ext = &mut s.extensions[idx];
        ext.id = Some(id.clone());
        ext.invoke = events.iter().any(|e| e == "INVOKE");
        // Internal extensions cannot receive SHUTDOWN; the runtime gets SIGTERM instead.
        ext.shutdown = ext.external && events.iter().any(|e| e == "SHUTDOWN");
        ext.account_id_feature = account_id_feature;
        shared
            .timeline
            .record(Actor::Extension(name.clone()), EventKind::Registered, None);
        Ok(())
    });
    if let Err((status, kind, msg)) = registered {
        return error(status, kind, msg);
    }
    let cfg = &shared.config;
    let mut body = json!({
        "functionName": cfg.function_name,
        "functionVersion": cfg.function_version,
        "handler": cfg.handler,
    });
    if account_id_feature {
        body["accountId"] = json!(cfg.account_id);
    }
    let mut resp = json(StatusCode::OK, &body);
    if let Ok(v) = http::HeaderValue::from_str(&id) {
        resp.headers_mut().insert(ID, v);
    }
    resp
}

/// `GET /2020-01-01/extension/event/next`: ends the previous event, waits for the next.
pub(super) async fn next(shared: Arc<Shared>, req: Request<Incoming>) -> HttpResponse {
    let Some(id) = header(&req, ID).map(String::from) else {
        return error(
            StatusCode::FORBIDDEN,
            "Extension.MissingExtensionIdentifier",
            "missing Lambda-Extension-Identifier",
        );
    };
    let known = shared.state.update(|s| {
        let generation = s.generation;
        let ext = s.extension_by_id(&id)?;
        ext.busy = false;
        ext.ready = true;
        // Recorded before the change is published, so the timeline keeps cause before effect.
        let actor = Actor::Extension(ext.name.clone());
        shared.timeline.record(actor, EventKind::Next, None);
        Some(generation)
    });
    let Some(generation) = known else {
        return error(
            StatusCode::FORBIDDEN,
            "Extension.UnknownExtensionIdentifier",
            "unknown extension identifier",
        );
    };
    let event = shared
        .state
        .wait_for(|s| {
            if s.generation != generation {
                return Some(None);
            }
            let ext = s.extension_by_id(&id)?;
            if ext.exited.is_some() {
                return Some(None);
            }
            let event = ext.queue.pop_front()?;
            ext.busy = true;
            let kind = if event.shutdown {
                ExtensionEventKind::Shutdown
            } else {
                ExtensionEventKind::Invoke
            };
            shared.timeline.record(
                Actor::Extension(ext.name.clone()),
                EventKind::ExtensionEvent { event: kind },
                event.request_id.as_deref(),
            );
            Some(Some(event))
        })
        .await;
    let Some(event) = event else {
        return error(StatusCode::GONE, "Extension.Reset", "the sandbox was reset");
    };
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("lambda-extension-event-identifier", uuid_v4())
        .body(Full::new(event.body.to_string().into()))
        .unwrap_or_else(|e| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Extension.InvalidEvent",
                &e.to_string(),
            )
        })
}

/// `POST …/init/error` and `…/exit/error`.
pub(super) async fn report_error(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    init: bool,
) -> HttpResponse {
    let Some(id) = header(&req, ID).map(String::from) else {
        return error(
            StatusCode::FORBIDDEN,
            "Extension.MissingExtensionIdentifier",
            "missing Lambda-Extension-Identifier",
        );
    };
    let error_type = header(&req, "lambda-extension-function-error-type")
        .filter(|t| !t.is_empty())
        .unwrap_or(if init {
            "Extension.InitError"
        } else {
            "Extension.ExitError"
        })
        .to_string();
    let _ = body(req, 1024 * 1024).await;
    let name = shared.state.update(|s| {
        if init && s.phase != Phase::Init {
            return Err(StatusCode::FORBIDDEN);
        }
        let ext = s.extension_by_id(&id).ok_or(StatusCode::FORBIDDEN)?;
        ext.error = Some(error_type.clone());
        shared.timeline.record(
            Actor::Extension(ext.name.clone()),
            EventKind::ErrorReported {
                error_type: error_type.clone(),
            },
            None,
        );
        Ok(())
    });
    match name {
        Ok(()) => accepted(),
        Err(status) => error(
            status,
            "InvalidStateTransition",
            "unknown extension, or init/error after init",
        ),
    }
}
