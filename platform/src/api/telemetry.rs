//! `PUT /2022-07-01/telemetry`: an extension subscribes to platform, function and extension
//! records, delivered to `sandbox.localdomain:<port>` (here: 127.0.0.1:<port>).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{Request, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::json;

use super::{HttpResponse, body, error, header, json};
use crate::platform::Shared;
use crate::telemetry::{Category, Record, Subscription};
use crate::timeline::{Actor, EventKind};

/// Schema versions Lambda accepts.
const SCHEMAS: [&str; 3] = ["2022-07-01", "2022-12-13", "2025-01-29"];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request_ {
    schema_version: Option<String>,
    destination: Destination,
    types: Vec<String>,
    #[serde(default)]
    buffering: Buffering,
}

#[derive(Deserialize)]
struct Destination {
    protocol: String,
    #[serde(rename = "URI")]
    uri: String,
}

/// Lambda's defaults and documented ranges.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Buffering {
    #[serde(default = "max_items")]
    max_items: u64,
    #[serde(default = "max_bytes")]
    max_bytes: u64,
    #[serde(default = "timeout_ms")]
    timeout_ms: u64,
}

fn max_items() -> u64 {
    10_000
}
fn max_bytes() -> u64 {
    262_144
}
fn timeout_ms() -> u64 {
    1_000
}

impl Default for Buffering {
    fn default() -> Self {
        Self {
            max_items: max_items(),
            max_bytes: max_bytes(),
            timeout_ms: timeout_ms(),
        }
    }
}

pub(super) async fn subscribe(shared: Arc<Shared>, req: Request<Incoming>) -> HttpResponse {
    let Some(id) = header(&req, "lambda-extension-identifier").map(String::from) else {
        return error(
            StatusCode::FORBIDDEN,
            "Extension.MissingExtensionIdentifier",
            "missing Lambda-Extension-Identifier",
        );
    };
    let Some(name) = shared
        .state
        .update(|s| s.extension_by_id(&id).map(|e| e.name.clone()))
    else {
        return error(
            StatusCode::FORBIDDEN,
            "Extension.UnknownExtensionIdentifier",
            "unknown extension identifier",
        );
    };
    let Some(raw) = body(req, 64 * 1024).await else {
        return error(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            "unreadable subscription body",
        );
    };
    let sub = match parse(&raw, name.clone()) {
        Ok(sub) => sub,
        Err(msg) => return error(StatusCode::BAD_REQUEST, "ValidationError", &msg),
    };
    let types: Vec<&str> = sub
        .categories
        .iter()
        .map(|c| match c {
            Category::Platform => "platform",
            Category::Function => "function",
            Category::Extension => "extension",
        })
        .collect();
    let record = Record::platform(
        "platform.telemetrySubscription",
        SystemTime::now(),
        json!({ "name": name, "state": "Subscribed", "types": types }),
    );
    shared.subscribe(sub);
    shared.emit(record);
    shared
        .timeline
        .record(Actor::Extension(name), EventKind::TelemetrySubscribed, None);
    json(StatusCode::OK, &json!("OK"))
}

fn parse(raw: &[u8], name: String) -> Result<Subscription, String> {
    let req: Request_ =
        serde_json::from_slice(raw).map_err(|e| format!("subscription body: {e}"))?;
    if let Some(v) = &req.schema_version
        && !SCHEMAS.contains(&v.as_str())
    {
        return Err(format!(
            "unsupported schemaVersion {v}; accepted: {}",
            SCHEMAS.join(", ")
        ));
    }
    if req.destination.protocol != "HTTP" {
        return Err(format!(
            "destination protocol {} is not HTTP",
            req.destination.protocol
        ));
    }
    let (host, port, path) = parse_uri(&req.destination.uri)?;
    let mut categories = Vec::new();
    for t in &req.types {
        let c = Category::parse(t)
            .ok_or_else(|| format!("unknown type {t}; use platform, function, extension"))?;
        if !categories.contains(&c) {
            categories.push(c);
        }
    }
    let b = &req.buffering;
    check("maxItems", b.max_items, 1_000, 10_000)?;
    check("maxBytes", b.max_bytes, 262_144, 1_048_576)?;
    check("timeoutMs", b.timeout_ms, 25, 30_000)?;
    Ok(Subscription {
        name,
        port,
        path,
        host,
        categories,
        max_items: b.max_items as usize,
        max_bytes: b.max_bytes as usize,
        timeout: Duration::from_millis(b.timeout_ms),
    })
}

fn check(field: &str, v: u64, min: u64, max: u64) -> Result<(), String> {
    if (min..=max).contains(&v) {
        Ok(())
    } else {
        Err(format!("buffering.{field} {v} is outside {min}..={max}"))
    }
}

/// `http://sandbox.localdomain:1234/path` → (Host header, port, path). Only hosts that name
/// the sandbox itself are accepted, as on Lambda.
fn parse_uri(uri: &str) -> Result<(String, u16, String), String> {
    let rest = uri
        .strip_prefix("http://")
        .ok_or_else(|| format!("destination {uri} is not http://"))?;
    let (authority, path) = rest
        .find('/')
        .map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| format!("destination {uri} has no port"))?;
    if !matches!(
        host,
        "sandbox" | "sandbox.localdomain" | "localhost" | "127.0.0.1"
    ) {
        return Err(format!(
            "destination host {host} is not the sandbox (use sandbox.localdomain)"
        ));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("destination port {port} is not a port"))?;
    Ok((authority.to_string(), port, path.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sandbox_destinations() {
        assert_eq!(
            parse_uri("http://sandbox.localdomain:8999/t").ok(),
            Some(("sandbox.localdomain:8999".into(), 8999, "/t".into()))
        );
        assert_eq!(
            parse_uri("http://sandbox:9003").ok(),
            Some(("sandbox:9003".into(), 9003, "/".into()))
        );
        assert!(parse_uri("http://example.com:80/").is_err());
        assert!(parse_uri("https://sandbox:1/").is_err());
        assert!(parse_uri("http://sandbox/").is_err());
    }

    #[test]
    fn validates_buffering_and_types() {
        let ok = br#"{"schemaVersion":"2022-12-13","destination":{"protocol":"HTTP","URI":"http://sandbox:1/"},
            "types":["platform","function"],"buffering":{"maxItems":1000,"maxBytes":262144,"timeoutMs":25}}"#;
        let sub = parse(ok, "x".into()).expect("valid");
        assert_eq!(sub.categories, vec![Category::Platform, Category::Function]);
        assert_eq!(sub.timeout, Duration::from_millis(25));
        let small =
            br#"{"destination":{"protocol":"HTTP","URI":"http://sandbox:1/"},"types":["platform"],
            "buffering":{"timeoutMs":5}}"#;
        assert!(parse(small, "x".into()).unwrap_err().contains("timeoutMs"));
        let bad = br#"{"destination":{"protocol":"HTTP","URI":"http://sandbox:1/"},"types":["platfrom"]}"#;
        assert!(parse(bad, "x".into()).unwrap_err().contains("platfrom"));
    }
}
