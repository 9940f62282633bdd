#!/usr/bin/env python3
"""Inferred-span oracle: datadog-lambda's inferred spans for ddlambda's event fixtures.

Usage: inferred_oracle.py FIXTURES_DIR [KEY=VALUE ...]  (run with the `tracer` peer venv's python)

The environment is cleared of `DD_*` variables, then the KEY=VALUE pairs are set (e.g.
`DD_SERVICE_MAPPING=...`, `DD_DECODE_AUTHORIZER_CONTEXT=false`): datadog-lambda reads them at
import time.

For every `*.json` event in FIXTURES_DIR (but `cases.json`), does what datadog-lambda's wrapper
does before the handler runs (`wrapper._before`): `extract_dd_trace_context`, then
`set_dd_trace_py_root` (the event's context becomes the active parent), then
`create_inferred_span(event, context, event_source, config.decode_authorizer_context)`. Every span
ddtrace starts meanwhile is captured in-process (a span processor; the writer is replaced by one
that drops everything, so nothing leaves the process). Prints one JSON object
{fixture file: {"event_source": ..., "context": {...} | null, "spans": [...]}} with the spans in
start order (upstream first): name, service, resource, span_type, start_ns, duration_ns (null
while unfinished: the span that parents aws.lambda), meta, metrics, and the parent as "context"
(the extracted context's span id), "root" (none), {"span": index} (another captured span) or
{"other": id}.
"""

import json
import os
import sys

# The environment datadog-lambda reads at import time: defaults, no agent, no X-Ray.
for key in list(os.environ):
    if key.startswith("DD_") or key in ("_X_AMZN_TRACE_ID", "AWS_XRAY_DAEMON_ADDRESS"):
        del os.environ[key]
os.environ["AWS_LAMBDA_FUNCTION_NAME"] = "inferred-oracle"
os.environ["DD_TRACE_STATS_COMPUTATION_ENABLED"] = "false"
os.environ["DD_INSTRUMENTATION_TELEMETRY_ENABLED"] = "false"
os.environ["DD_REMOTE_CONFIGURATION_ENABLED"] = "false"
for pair in sys.argv[2:]:
    key, _, value = pair.partition("=")
    os.environ[key] = value

from ddtrace.internal.writer.writer import TraceWriter  # noqa: E402
from ddtrace.trace import tracer  # noqa: E402
from ddtrace._trace.processor import SpanProcessor  # noqa: E402

from datadog_lambda.config import config  # noqa: E402
from datadog_lambda.tracing import (  # noqa: E402
    create_inferred_span,
    extract_dd_trace_context,
    set_dd_trace_py_root,
)

REQUEST_ID = "00000000-0000-0000-0000-000000000000"
MASK64 = (1 << 64) - 1


class DropWriter(TraceWriter):
    """A writer that sends nothing anywhere."""

    def recreate(self, appsec_enabled=None, llmobs_enabled=None):
        return self

    def stop(self, timeout=None):
        pass

    def write(self, spans=None):
        pass

    def flush_queue(self):
        pass


class Capture(SpanProcessor):
    """Every span ddtrace starts, in start order."""

    def __init__(self):
        super().__init__()
        self.spans = []

    def on_span_start(self, span):
        self.spans.append(span)

    def on_span_finish(self, span):
        pass


class LambdaContext:
    aws_request_id = REQUEST_ID
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:inferred-oracle"
    function_name = "inferred-oracle"
    function_version = "$LATEST"
    memory_limit_in_mb = 128
    client_context = None


def metric(value):
    """A metric as JSON: a number, or its text if it somehow is not one."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return str(value)


def describe(span, index, spans, context):
    parent = span.parent_id
    if not parent:
        parent_ref = "root"
    elif context is not None and parent == context.span_id:
        parent_ref = "context"
    else:
        ids = [s.span_id for s in spans]
        parent_ref = {"span": ids.index(parent)} if parent in ids else {"other": str(parent)}
    return {
        "name": span.name,
        "service": span.service,
        "resource": span.resource,
        "span_type": span.span_type,
        "start_ns": span.start_ns,
        "duration_ns": span.duration_ns,
        "meta": {k: str(v) for k, v in span.get_tags().items()},
        "metrics": {k: metric(v) for k, v in span.get_metrics().items()},
        "parent": parent_ref,
        "returned": False,
        "index": index,
    }


def run(event, capture):
    tracer.context_provider.activate(None)
    decode = config.decode_authorizer_context
    context, source, event_source = extract_dd_trace_context(
        event, LambdaContext(), decode_authorizer_context=decode
    )
    set_dd_trace_py_root(source, False)
    parent_context = context if source == "event" else None
    capture.spans = []
    returned = create_inferred_span(event, LambdaContext(), event_source, decode)
    spans = list(capture.spans)
    out = [describe(s, i, spans, parent_context) for i, s in enumerate(spans)]
    for span, described in zip(spans, out):
        described["returned"] = span is returned
        del described["index"]
    # Close what the wrapper would close after the handler, so nothing leaks into the next event.
    for span in spans:
        if not span.finished:
            span.finish()
    tracer.context_provider.activate(None)
    return {
        "event_source": event_source.to_string() if event_source else None,
        "context": None
        if parent_context is None
        else {
            # The low 64 bits: extract_differential compares the rest.
            "trace_id": str(parent_context.trace_id & MASK64),
            "span_id": str(parent_context.span_id),
        },
        "spans": out,
    }


def main():
    fixtures = sys.argv[1]
    tracer._span_aggregator.writer = DropWriter()
    capture = Capture()
    capture.register()
    results = {}
    for name in sorted(os.listdir(fixtures)):
        if not name.endswith(".json") or name == "cases.json":
            continue
        with open(os.path.join(fixtures, name), encoding="utf-8") as f:
            event = json.load(f)
        results[name] = run(event, capture)
    json.dump(results, sys.stdout, sort_keys=True, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
