//! Spans the extension writes itself, from telemetry, for what a runtime cannot report: the
//! `aws.lambda` span of an invocation that died (timeout, crash, out of memory), and the
//! `aws.lambda.cold_start` span of the first invocation.

use std::collections::BTreeMap;

use ddlambda_wire::Span;
use ddlambda_wire::invocation::InvocationStart;

/// Why the runtime could not report its own span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Timeout,
    OutOfMemory,
    /// The runtime process exited or Lambda failed it; the `errorType` as reported.
    Exit(String),
}

impl Failure {
    /// `error.type` on the span.
    pub fn error_type(&self) -> &str {
        match self {
            Self::Timeout => "Timeout",
            Self::OutOfMemory => "OutOfMemory",
            Self::Exit(t) => t,
        }
    }
}

/// What telemetry says about a failed invocation.
#[derive(Debug, Clone)]
pub struct FailedInvocation<'a> {
    pub request_id: &'a str,
    pub function_name: &'a str,
    pub failure: Failure,
    /// `platform.start` (ns since the epoch), when it arrived.
    pub platform_start_ns: Option<i64>,
    /// `runtimeDone.time` (ns).
    pub done_ns: i64,
    /// `runtimeDone.metrics.durationMs`.
    pub duration_ms: Option<f64>,
    pub cold_start: bool,
    /// What the wrapper announced for this request, if it did.
    pub announced: Option<&'a InvocationStart>,
}

/// A random non-zero 64-bit id.
pub fn new_id() -> u64 {
    loop {
        let id = fastrand::u64(..) >> 1;
        if id != 0 {
            return id;
        }
    }
}

/// The `aws.lambda` span for an invocation the runtime never reported. With the wrapper's
/// announcement it takes the ids and start the wrapper's span would have had, so the trace
/// stays whole; otherwise it starts a new trace at `platform.start`.
pub fn error_span(f: &FailedInvocation<'_>) -> Span {
    let (trace_id, span_id, parent_id, start) = match f.announced {
        Some(a) => (a.trace_id, a.span_id, a.parent_id, a.start_ns),
        None => {
            let start = f
                .platform_start_ns
                .or_else(|| f.duration_ms.map(|ms| f.done_ns - (ms * 1e6) as i64))
                .unwrap_or(f.done_ns);
            (new_id(), new_id(), 0, start)
        }
    };
    // End where the platform says the runtime stopped: start of the invocation plus its
    // runtime duration, or the runtimeDone record's time.
    let end = match (f.platform_start_ns, f.duration_ms) {
        (Some(s), Some(ms)) => s + (ms * 1e6) as i64,
        _ => f.done_ns,
    };
    let message = match &f.failure {
        Failure::Timeout => match f.duration_ms {
            Some(ms) => format!("Task timed out after {:.2} seconds", ms / 1000.0),
            None => "Task timed out".to_owned(),
        },
        Failure::OutOfMemory => "Runtime exited: out of memory".to_owned(),
        Failure::Exit(t) => format!("Runtime exited without reporting the invocation ({t})"),
    };
    let mut meta = BTreeMap::from([
        ("request_id".to_owned(), f.request_id.to_owned()),
        ("error.type".to_owned(), f.failure.error_type().to_owned()),
        ("error.message".to_owned(), message.clone()),
        ("error.msg".to_owned(), message),
        ("cold_start".to_owned(), f.cold_start.to_string()),
        // Marks a span the extension wrote from telemetry, for whoever reads the trace.
        ("_dd.ddlambda.source".to_owned(), "telemetry".to_owned()),
    ]);
    if let Some(high) = f.announced.and_then(|a| a.trace_id_high) {
        meta.insert("_dd.p.tid".to_owned(), format!("{high:016x}"));
    }
    let priority = f.announced.and_then(|a| a.sampling_priority).unwrap_or(1);
    Span {
        service: "aws.lambda".to_owned(),
        name: "aws.lambda".to_owned(),
        resource: f.function_name.to_owned(),
        trace_id,
        span_id,
        parent_id,
        start,
        duration: (end - start).max(0),
        error: 1,
        meta,
        metrics: BTreeMap::from([
            ("_sampling_priority_v1".to_owned(), f64::from(priority)),
            ("_top_level".to_owned(), 1.0),
        ]),
        r#type: "serverless".to_owned(),
        span_links: Vec::new(),
        meta_struct: BTreeMap::new(),
    }
}

/// The span a telemetry span hangs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent {
    pub trace_id: u64,
    /// High 64 bits of a 128-bit trace id (`_dd.p.tid`).
    pub trace_id_high: Option<u64>,
    pub span_id: u64,
}

impl From<&InvocationStart> for Parent {
    fn from(a: &InvocationStart) -> Self {
        Self {
            trace_id: a.trace_id,
            trace_id_high: a.trace_id_high,
            span_id: a.span_id,
        }
    }
}

impl From<crate::buffer::LambdaSpan> for Parent {
    fn from(s: crate::buffer::LambdaSpan) -> Self {
        Self {
            trace_id: s.trace_id,
            trace_id_high: s.trace_id_high,
            span_id: s.span_id,
        }
    }
}

impl From<&Span> for Parent {
    fn from(s: &Span) -> Self {
        Self {
            trace_id: s.trace_id,
            trace_id_high: s
                .meta
                .get("_dd.p.tid")
                .and_then(|h| u64::from_str_radix(h, 16).ok()),
            span_id: s.span_id,
        }
    }
}

/// The `aws.lambda.cold_start` span: `platform.initStart` for `init_ms`, a child of the first
/// invocation's `aws.lambda` span, or the root of a trace of its own when that is unknown
/// (`parent: None`).
pub fn cold_start_span(
    function_name: &str,
    init_start_ns: i64,
    init_ms: f64,
    init_type: Option<&str>,
    parent: Option<Parent>,
) -> Span {
    let mut meta = BTreeMap::from([("_dd.ddlambda.source".to_owned(), "telemetry".to_owned())]);
    if let Some(t) = init_type {
        meta.insert("init_type".to_owned(), t.to_owned());
    }
    // The span travels in a chunk of its own: the chunk needs the high half to join the trace.
    if let Some(high) = parent.and_then(|p| p.trace_id_high) {
        meta.insert("_dd.p.tid".to_owned(), format!("{high:016x}"));
    }
    let (trace_id, parent_id) = parent.map_or_else(|| (new_id(), 0), |p| (p.trace_id, p.span_id));
    Span {
        service: "aws.lambda".to_owned(),
        name: "aws.lambda.cold_start".to_owned(),
        resource: function_name.to_owned(),
        trace_id,
        span_id: new_id(),
        parent_id,
        start: init_start_ns,
        duration: (init_ms * 1e6) as i64,
        meta,
        r#type: "serverless".to_owned(),
        ..Span::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_announced_invocation_keeps_the_wrappers_ids() {
        let announced = InvocationStart {
            request_id: "r1".into(),
            trace_id: 11,
            trace_id_high: Some(0x6900_0000_0000_0000),
            span_id: 22,
            parent_id: 33,
            sampling_priority: Some(2),
            start_ns: 1_000_000_500,
            cold_start: true,
        };
        let s = error_span(&FailedInvocation {
            request_id: "r1",
            function_name: "fn",
            failure: Failure::Timeout,
            platform_start_ns: Some(1_000_000_000),
            done_ns: 4_000_000_000,
            duration_ms: Some(3000.0),
            cold_start: true,
            announced: Some(&announced),
        });
        assert_eq!((s.trace_id, s.span_id, s.parent_id), (11, 22, 33));
        assert_eq!(s.start, 1_000_000_500);
        assert_eq!(s.duration, 3_000_000_000 - 500);
        assert_eq!(s.error, 1);
        assert_eq!(s.meta["error.type"], "Timeout");
        assert_eq!(s.meta["error.message"], "Task timed out after 3.00 seconds");
        assert_eq!(s.meta["_dd.p.tid"], "6900000000000000");
        assert_eq!(s.metrics["_sampling_priority_v1"], 2.0);
    }

    #[test]
    fn without_an_announcement_a_new_trace_starts_at_platform_start() {
        let s = error_span(&FailedInvocation {
            request_id: "r2",
            function_name: "fn",
            failure: Failure::Exit("Runtime.ExitError".into()),
            platform_start_ns: None,
            done_ns: 5_000_000_000,
            duration_ms: Some(1000.0),
            cold_start: false,
            announced: None,
        });
        assert_ne!(s.trace_id, 0);
        assert_eq!(s.parent_id, 0);
        assert_eq!((s.start, s.duration), (4_000_000_000, 1_000_000_000));
        assert_eq!(s.meta["error.type"], "Runtime.ExitError");
        let c = cold_start_span("fn", 10, 250.5, Some("on-demand"), Some(Parent::from(&s)));
        assert_eq!((c.trace_id, c.parent_id), (s.trace_id, s.span_id));
        assert_eq!(c.duration, 250_500_000);
        assert!(!c.meta.contains_key("_dd.p.tid"));
        let root = cold_start_span("fn", 10, 1.0, None, None);
        assert_ne!(root.trace_id, 0);
        assert_eq!(root.parent_id, 0);
    }
}
