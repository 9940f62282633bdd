//! Rust `tracing` spans opened inside a handler become Datadog spans, children of
//! `aws.lambda` (or of the enclosing `tracing` span).
//!
//! Add [`DatadogLayer`] to a `tracing_subscriber`
//! registry. The handler runs inside a `tracing` span named `aws.lambda` whose fields
//! `dd.trace_id` and `dd.span_id` are the ids of the Datadog span, so any formatter that prints
//! span fields correlates every log line with its trace.
//!
//! A line logged inside one of the function's own spans belongs to that span, as with
//! ddtrace's log injection (the active span's id): [`DatadogFormat`] wraps a `fmt` event format
//! and writes the ids of the innermost Datadog span first — `[dd.trace_id=… dd.span_id=…]` on
//! a text line, a `"dd":{"trace_id":…,"span_id":…}` member on a JSON object.
//! [`init_default_subscriber`] uses it, with [`DatadogFields`] so the handler span's own
//! `dd.*` fields do not repeat them.
//!
//! A span becomes a Datadog span when it opens under an invocation (inside the handler's
//! `aws.lambda` span, or in a task where an invocation is current); its fields become `meta`
//! (numbers: `metrics`); a field `error` (or an `ERROR` event inside it) marks it as an error.
//! It is reported when it closes, if the invocation has not been sent yet. Spans of
//! `lambda_runtime` itself are left out: they wrap the invocation rather than run in it.

use std::fmt::{self, Debug};

use ddlambda_wire::Span as DdSpan;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::{MakeVisitor as _, RecordFields, VisitOutput as _};
use tracing_subscriber::fmt::format::{DefaultFields, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::spans::Invocation;
use crate::spans::ids::{now_ns, random_id};

/// The target of the handler's own `aws.lambda` span.
pub const ROOT_TARGET: &str = "ddlambda::invocation";

/// The `tracing_subscriber` layer that turns spans into Datadog spans.
#[derive(Debug, Default, Clone, Copy)]
pub struct DatadogLayer {
    _private: (),
}

impl DatadogLayer {
    pub fn new() -> Self {
        Self::default()
    }
}

/// What the layer keeps in a span's extensions.
struct Open {
    invocation: Invocation,
    span_id: u64,
    /// The handler's `aws.lambda` span: it has no Datadog span of its own.
    root: bool,
    data: Option<Pending>,
}

struct Pending {
    span: DdSpan,
}

impl<S> tracing_subscriber::Layer<S> for DatadogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span_ref) = ctx.span(id) else { return };
        let metadata = attrs.metadata();
        if metadata.target().starts_with("lambda_runtime") {
            return;
        }
        let parent = span_ref.parent().and_then(|parent| {
            let ext = parent.extensions();
            ext.get::<Open>().map(|o| (o.invocation.clone(), o.span_id))
        });
        let (invocation, parent_id) = match parent {
            Some(found) => found,
            None => match crate::handler::current() {
                Some(invocation) => {
                    let parent_id = invocation.span_id();
                    (invocation, parent_id)
                }
                None => return,
            },
        };
        if metadata.target() == ROOT_TARGET {
            let span_id = invocation.span_id();
            span_ref.extensions_mut().insert(Open {
                invocation,
                span_id,
                root: true,
                data: None,
            });
            return;
        }
        let mut span = DdSpan {
            name: metadata.name().to_owned(),
            resource: metadata.name().to_owned(),
            span_id: random_id(),
            parent_id,
            start: now_ns(),
            ..DdSpan::default()
        };
        attrs.record(&mut FieldVisitor { span: &mut span });
        span_ref.extensions_mut().insert(Open {
            invocation,
            span_id: span.span_id,
            root: false,
            data: Some(Pending { span }),
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span_ref) = ctx.span(id) else { return };
        let mut ext = span_ref.extensions_mut();
        if let Some(Open {
            data: Some(pending),
            ..
        }) = ext.get_mut::<Open>()
        {
            values.record(&mut FieldVisitor {
                span: &mut pending.span,
            });
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(span_ref) = ctx.event_span(event) else {
            return;
        };
        let invocation = {
            let mut ext = span_ref.extensions_mut();
            let Some(open) = ext.get_mut::<Open>() else {
                return;
            };
            if *event.metadata().level() == tracing::Level::ERROR
                && let Some(pending) = open.data.as_mut()
            {
                pending.span.error = 1;
                let mut message = MessageVisitor(None);
                event.record(&mut message);
                if let Some(message) = message.0 {
                    pending
                        .span
                        .meta
                        .entry("error.message".into())
                        .or_insert(message);
                }
            }
            open.invocation.clone()
        };
        // A log line inside an invocation wants `dd.trace_id`: extraction, deferred off the
        // response path, runs now if it has not yet (once per invocation), and records it on
        // the handler's span before the line is formatted (this layer sits under the
        // formatter, see `init_default_subscriber`).
        if !invocation.is_resolved() {
            invocation.ids();
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span_ref) = ctx.span(&id) else {
            return;
        };
        let Some(open) = span_ref.extensions_mut().remove::<Open>() else {
            return;
        };
        if open.root {
            return;
        }
        if let Some(Pending { mut span }) = open.data {
            span.duration = (now_ns() - span.start).max(0);
            open.invocation.add_span(span);
        }
    }
}

/// A `fmt` event format that starts each line logged under an invocation with the ids of the
/// innermost Datadog span it was logged in (a span of the function's own, else `aws.lambda`).
/// Lines outside an invocation are left as they are.
#[derive(Debug, Clone)]
pub struct DatadogFormat<F> {
    inner: F,
}

impl<F> DatadogFormat<F> {
    /// Wraps `inner` (e.g. `tracing_subscriber::fmt::format()` or its `.json()`).
    pub fn new(inner: F) -> Self {
        Self { inner }
    }
}

impl<S, N, F> FormatEvent<S, N> for DatadogFormat<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some((trace_id, span_id)) = event_ids(ctx) else {
            return self.inner.format_event(ctx, writer, event);
        };
        if writer.has_ansi_escapes() {
            // Buffering would drop the colours: a colour terminal gets the text prefix.
            write!(writer, "[dd.trace_id={trace_id} dd.span_id={span_id}] ")?;
            return self.inner.format_event(ctx, writer, event);
        }
        let mut line = String::with_capacity(256);
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            // Ids as strings: 64-bit values do not survive JSON numbers in every reader.
            Some(rest) => write!(
                writer,
                "{{\"dd\":{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"}}{}{rest}",
                if rest.trim_start().starts_with('}') {
                    ""
                } else {
                    ","
                }
            ),
            None => write!(
                writer,
                "[dd.trace_id={trace_id} dd.span_id={span_id}] {line}"
            ),
        }
    }
}

/// `fmt` fields formatted as `DefaultFields` does, without the `dd.trace_id` / `dd.span_id` of
/// the handler's span: with [`DatadogFormat`] they would repeat, and for a line logged in a
/// span of the function's own, contradict, the ids the line starts with.
#[derive(Debug, Default, Clone, Copy)]
pub struct DatadogFields {
    _private: (),
}

impl DatadogFields {
    pub fn new() -> Self {
        Self::default()
    }
}

impl<'w> FormatFields<'w> for DatadogFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = WithoutIds(DefaultFields::new().make_visitor(writer));
        fields.record(&mut visitor);
        visitor.0.finish()
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &Record<'_>,
    ) -> fmt::Result {
        // Only a separator when something is added (recording `dd.trace_id` adds nothing).
        let mut added = String::new();
        self.format_fields(Writer::new(&mut added), fields)?;
        if !added.is_empty() {
            if !current.fields.is_empty() {
                current.fields.push(' ');
            }
            current.fields.push_str(&added);
        }
        Ok(())
    }
}

/// Forwards every field but the ids of the handler's span.
struct WithoutIds<V>(V);

impl<V: Visit> WithoutIds<V> {
    fn keep(field: &Field) -> bool {
        !matches!(field.name(), "dd.trace_id" | "dd.span_id")
    }
}

impl<V: Visit> Visit for WithoutIds<V> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        if Self::keep(field) {
            self.0.record_debug(field, value);
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if Self::keep(field) {
            self.0.record_str(field, value);
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        if Self::keep(field) {
            self.0.record_bool(field, value);
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        if Self::keep(field) {
            self.0.record_i64(field, value);
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        if Self::keep(field) {
            self.0.record_u64(field, value);
        }
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        if Self::keep(field) {
            self.0.record_f64(field, value);
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if Self::keep(field) {
            self.0.record_error(field, value);
        }
    }
}

/// The trace id and the id of the innermost Datadog span the event was logged in.
fn event_ids<S, N>(ctx: &FmtContext<'_, S, N>) -> Option<(u64, u64)>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    ctx.event_scope()?
        .find_map(|span| {
            let ext = span.extensions();
            let open = ext.get::<Open>()?;
            Some((open.invocation.clone(), open.span_id))
        })
        // Outside the extensions lock: resolving may record on the handler's span.
        .map(|(invocation, span_id)| (invocation.ids().trace_id, span_id))
}

/// Installs a global subscriber: log lines formatted as `lambda_runtime`'s default subscriber
/// does (level from `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else `INFO`) behind the ids of
/// their Datadog span ([`DatadogFormat`]), plus the [`DatadogLayer`], which sees every span
/// whatever the log level.
pub fn init_default_subscriber() {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::fmt::format;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "INFO".to_owned());
    let filter = tracing_subscriber::EnvFilter::try_new(level.to_lowercase())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer()
        .fmt_fields(DatadogFields::new())
        .event_format(DatadogFormat::new(
            format().with_target(false).without_time(),
        ))
        .with_filter(filter);
    // The Datadog layer goes first: it sees each event before the formatter does.
    let _ = tracing_subscriber::registry()
        .with(DatadogLayer::new())
        .with(logs)
        .try_init();
}

struct FieldVisitor<'a> {
    span: &'a mut DdSpan,
}

impl FieldVisitor<'_> {
    fn meta(&mut self, field: &Field, value: String) {
        match field.name() {
            "resource" | "resource.name" => self.span.resource = value,
            "service" | "service.name" => self.span.service = value,
            "span.type" => self.span.r#type = value,
            "error" => {
                self.span.error = 1;
                self.span.meta.insert("error.message".into(), value);
            }
            name => {
                self.span.meta.insert(name.to_owned(), value);
            }
        }
    }

    fn metric(&mut self, field: &Field, value: f64) {
        self.span.metrics.insert(field.name().to_owned(), value);
    }
}

impl Visit for FieldVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.meta(field, format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.meta(field, value.to_owned());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "error" {
            self.span.error = i32::from(value);
        } else {
            self.meta(field, value.to_string());
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.metric(field, value as f64);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.metric(field, value as f64);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.metric(field, value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.span.error = 1;
        self.span
            .meta
            .insert("error.message".into(), value.to_string());
        if field.name() != "error" {
            self.span
                .meta
                .insert(field.name().to_owned(), value.to_string());
        }
    }
}

struct MessageVisitor(Option<String>);

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        if field.name() == "message" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}
