//! `ddlambda extract EVENT_FILE [--xray HEADER]`: prints the trace context that would parent
//! `aws.lambda` for this event, with the function's configuration (`DD_TRACE_EXTRACTOR`,
//! `DD_MERGE_XRAY_TRACES`, `DD_TRACE_PROPAGATION_STYLE[_EXTRACT]`,
//! `DD_DECODE_AUTHORIZER_CONTEXT`) read from the environment: "why is my trace not connected?".
//!
//! Output, one JSON object: `{"source": "event"|"xray"|"custom"|"none", "extractor",
//! "trace_id" (decimal, low 64 bits), "trace_id_high" (16 hex), "parent_id" (decimal),
//! "sampling_priority", "origin", "links": [same fields]}`.

use std::path::PathBuf;
use std::process::ExitCode;

use ddlambda::extract::{Chain, InvocationInfo, Registry};
use ddlambda::wire::SpanContext;
use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct Args {
    /// The event JSON file (`-` for stdin).
    event: PathBuf,
    /// The runtime's X-Ray trace header (default: `$_X_AMZN_TRACE_ID`).
    #[arg(long, value_name = "HEADER")]
    xray: Option<String>,
    /// The invoke's client context JSON (`{"custom": {...}}`), as `Lambda-Runtime-Client-Context`
    /// carries it.
    #[arg(long, value_name = "JSON")]
    client_context: Option<String>,
}

pub fn run(args: Args) -> ExitCode {
    match extract(&args) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ddlambda extract: {e}");
            ExitCode::from(2)
        }
    }
}

fn extract(args: &Args) -> Result<Value, String> {
    let raw = if args.event.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("reading stdin: {e}"))?
    } else {
        std::fs::read_to_string(&args.event)
            .map_err(|e| format!("reading {}: {e}", args.event.display()))?
    };
    let event: Value = serde_json::from_str(&raw)
        .map_err(|e| format!("{} is not JSON: {e}", args.event.display()))?;
    let client_context = args
        .client_context
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| format!("--client-context is not JSON: {e}"))?;
    // As in a function, a bad DD_TRACE_EXTRACTOR is reported and the built-ins run.
    let chain = Chain::from_env(&Registry::new()).unwrap_or_else(|e| {
        eprintln!("ddlambda extract: warning: {e}; using the built-in extractors");
        Chain::builtins_from_env()
    });
    let xray = args
        .xray
        .clone()
        .or_else(|| std::env::var(ddlambda::xray::TRACE_ID_ENV).ok());
    let info = InvocationInfo {
        client_context,
        ..InvocationInfo::default()
    };
    let decision = chain.decide(&event, &info, xray.as_deref());
    let mut out = context_json(decision.context.as_ref());
    out["source"] = json!(decision.source.as_str());
    out["extractor"] = json!(decision.extractor);
    out["links"] = decision
        .links
        .iter()
        .map(|l| context_json(Some(l)))
        .collect();
    Ok(out)
}

fn context_json(ctx: Option<&SpanContext>) -> Value {
    json!({
        "trace_id": ctx.map(|c| c.trace_id.to_string()),
        "trace_id_high": ctx.and_then(SpanContext::trace_id_high_hex),
        "parent_id": ctx.map(|c| c.parent_id.to_string()),
        "sampling_priority": ctx.and_then(|c| c.sampling_priority),
        "origin": ctx.and_then(|c| c.origin.clone()),
    })
}
