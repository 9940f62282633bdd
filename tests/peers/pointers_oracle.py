#!/usr/bin/env python3
"""Span-pointer oracle: datadog-lambda's span pointers for ddlambda's event fixtures.

Usage: pointers_oracle.py [--wrapper] FIXTURES_DIR EVENT_FILE...  (run with the `tracer` peer
venv's python)

With `--wrapper`, runs datadog-lambda's real handler wrapper on each event (with the
environment's DD_TRACE_MANAGED_SERVICES) and prints, keyed by file name, the span links of every
span of the invocation as ddtrace encodes them in v0.4, keyed by span name: where the pointers
land.

Otherwise prints, for every event file, in one JSON object keyed by file name:
- "source": datadog-lambda's event source (`parse_event_source`);
- "event": the span links `calculate_span_pointers` gives the whole event, encoded as ddtrace
  4.16.0 encodes them in a v0.4 payload (`Span._add_span_pointer`, `MsgpackEncoderV04`);
- "records": the same for each record alone (an event holding only that record, the whole
  event's source), i.e. what a per-record skip of malformed records gives;
- "producer": for each record, the `ptr.hash` of the pointer ddtrace's botocore integration
  writes on the producer's span (S3 `PutObject` with that bucket, key and ETag; DynamoDB
  `UpdateItem` with that table and key), or null when it writes none.
"""

import contextlib
import json
import os
import sys

import msgpack

os.environ.pop("DD_BOTOCORE_ADD_SPAN_POINTERS", None)
os.environ.setdefault("AWS_LAMBDA_FUNCTION_NAME", "pointers-oracle")
# The wrapper's spans are kept in-process (a trace filter), never sent: an agent address that
# nothing answers keeps ddtrace from printing them, and no telemetry or remote config.
os.environ["DD_TRACE_AGENT_URL"] = "http://127.0.0.1:9"
os.environ["DD_INSTRUMENTATION_TELEMETRY_ENABLED"] = "false"
os.environ["DD_REMOTE_CONFIGURATION_ENABLED"] = "false"

from datadog_lambda.span_pointers import (  # noqa: E402
    _extract_table_name_from_dynamodb_stream_record,
    calculate_span_pointers,
)
from datadog_lambda.trigger import EventTypes, parse_event_source  # noqa: E402
from ddtrace._trace.utils_botocore.span_pointers.dynamodb import (  # noqa: E402
    _extract_span_pointers_for_dynamodb_response,
)
from ddtrace._trace.utils_botocore.span_pointers.s3 import (  # noqa: E402
    _extract_span_pointers_for_s3_response,
)
from ddtrace.internal._encoding import MsgpackEncoderV04  # noqa: E402
from ddtrace.trace import Span, TraceFilter, tracer  # noqa: E402


def decode_v04(spans):
    encoder = MsgpackEncoderV04(1 << 20, 1 << 20)
    encoder.put(spans)
    payload, _count = encoder.encode()[0]
    [decoded] = msgpack.unpackb(payload, strict_map_key=False)
    return decoded


def encoded_links(descriptions):
    """The span links of a span carrying `descriptions`, as the v0.4 payload holds them."""
    span = Span("aws.lambda")
    for d in descriptions:
        span._add_span_pointer(
            pointer_kind=d.pointer_kind,
            pointer_direction=d.pointer_direction,
            pointer_hash=d.pointer_hash,
            extra_attributes=d.extra_attributes,
        )
    span.finish()
    [decoded] = decode_v04([span])
    return decoded.get("span_links", [])


def producer_hash(source, record):
    """The hash on the producer's span for the object or item `record` is about."""
    try:
        if source.equals(EventTypes.S3):
            found = _extract_span_pointers_for_s3_response(
                "PutObject",
                {
                    "Bucket": record["s3"]["bucket"]["name"],
                    "Key": record["s3"]["object"]["key"],
                },
                {"ETag": record["s3"]["object"]["eTag"]},
            )
        elif source.equals(EventTypes.DYNAMODB):
            found = _extract_span_pointers_for_dynamodb_response(
                {},
                "UpdateItem",
                {
                    "TableName": _extract_table_name_from_dynamodb_stream_record(record),
                    "Key": record["dynamodb"]["Keys"],
                },
                {},
            )
        else:
            found = []
    except Exception:  # a malformed record: no producer could have written it either
        found = []
    return found[0].pointer_hash if found else None


def answer(event):
    source = parse_event_source(event)
    records = event.get("Records") if isinstance(event, dict) else None
    records = records if isinstance(records, list) else []
    # datadog-lambda's temporary DynamoDB stream-type metric prints to stdout.
    with contextlib.redirect_stdout(sys.stderr):
        whole = calculate_span_pointers(source, event)
        each = [calculate_span_pointers(source, {"Records": [r]}) for r in records]
    return {
        "source": source.to_string(),
        "event": encoded_links(whole),
        "records": [encoded_links(d) for d in each],
        "producer": [producer_hash(source, r) for r in records],
    }


class Keep(TraceFilter):
    """Keeps the finished spans instead of sending them."""

    spans = []

    def process_trace(self, trace):
        Keep.spans.extend(trace)
        return None


class LambdaContext:
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:pointers-oracle"
    function_name = "pointers-oracle"
    function_version = "$LATEST"
    memory_limit_in_mb = 128
    client_context = None

    def get_remaining_time_in_millis(self):
        return 60_000


def wrapped_answer(handler, event):
    Keep.spans = []
    with contextlib.redirect_stdout(sys.stderr):
        handler(event, LambdaContext())
        tracer.flush()
    if not Keep.spans:
        return {}
    return {span["name"]: span.get("span_links", []) for span in decode_v04(Keep.spans)}


def main():
    wrapper = sys.argv[1] == "--wrapper"
    args = sys.argv[2:] if wrapper else sys.argv[1:]
    fixtures, names = args[0], args[1:]
    handler = None
    if wrapper:
        tracer.configure(trace_processors=[Keep()])
        from datadog_lambda.wrapper import datadog_lambda_wrapper

        handler = datadog_lambda_wrapper(lambda event, context: {"ok": True})
    results = {}
    for name in names:
        with open(os.path.join(fixtures, name), encoding="utf-8") as f:
            event = json.load(f)
        results[name] = wrapped_answer(handler, event) if wrapper else answer(event)
    json.dump(results, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
