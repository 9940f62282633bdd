#!/usr/bin/env python3
"""Extraction oracle: datadog-lambda's answer for ddlambda's extraction fixtures.

Usage: extract_oracle.py CASES_JSON FIXTURES_DIR  (run with the `tracer` peer venv's python)

For every case (event file, optional X-Ray header, client context, DD_MERGE_XRAY_TRACES, a
declarative custom extractor and tracer settings in `env`), runs
`datadog_lambda.tracing.extract_dd_trace_context` and applies what datadog-lambda's wrapper does
next (`set_dd_trace_py_root`: the context parents `aws.lambda` only if it came from the event, or
with X-Ray merging, which swaps in the X-Ray parent id). Prints one JSON object {case name:
result} with results in `ddlambda extract`'s format (without `extractor` and `links`, which
datadog-lambda has no notion of), plus the meta of the context ddtrace's `HTTPPropagator.extract`
returned, which a ddtrace span continuing it carries on the first span of its trace chunk:
`propagation_tags` (`_dd.p.*`) and `span_tags` (`_dd.parent_id`, `_dd.propagation_error`,
`baggage.*`). datadog-lambda itself re-creates the context without meta in
`set_dd_trace_py_root`, so its own spans carry none of it.

ddtrace reads its settings (`DD_TRACE_PROPAGATION_STYLE[_EXTRACT]`, `..._EXTRACT_FIRST`,
`DD_TRACE_BAGGAGE_TAG_KEYS`, ...) once, at import: the cases of each distinct `env` run in a child
process started with that environment (`--only NAME...`), exactly as a function would be.
"""

import base64
import json
import os
import subprocess
import sys

# The settings a case may set; everything else is ddtrace's default.
TRACER_SETTINGS = (
    "DD_TRACE_PROPAGATION_STYLE",
    "DD_TRACE_PROPAGATION_STYLE_EXTRACT",
    "DD_TRACE_PROPAGATION_EXTRACT_FIRST",
    "DD_TRACE_PROPAGATION_BEHAVIOR_EXTRACT",
    "DD_TRACE_BAGGAGE_TAG_KEYS",
    "OTEL_PROPAGATORS",
)

if "--only" not in sys.argv:
    for name in TRACER_SETTINGS:
        os.environ.pop(name, None)
# X-Ray fallback only happens "in Lambda" (config.is_lambda_context).
os.environ.setdefault("AWS_LAMBDA_FUNCTION_NAME", "extract-oracle")
os.environ.pop("DD_TRACE_EXTRACTOR", None)
os.environ.pop("AWS_XRAY_DAEMON_ADDRESS", None)

from datadog_lambda.tracing import (  # noqa: E402
    _get_xray_trace_context,
    extract_dd_trace_context,
)

MASK64 = (1 << 64) - 1


class ClientContext:
    def __init__(self, raw):
        self.custom = (raw or {}).get("custom")


class LambdaContext:
    def __init__(self, client_context):
        self.client_context = ClientContext(client_context) if client_context else None
        self.aws_request_id = "00000000-0000-0000-0000-000000000000"
        self.invoked_function_arn = (
            "arn:aws:lambda:us-east-1:123456789012:function:extract-oracle"
        )
        self.function_name = "extract-oracle"
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 128


def pointer(value, ptr):
    for token in ptr.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        value = value[int(token)] if isinstance(value, list) else value[token]
    return value


def declarative(spec):
    """The Python equivalent of a ddlambda declarative extractor: a custom extractor with
    datadog-lambda's contract (event, context) -> (trace_id, parent_id, sampling_priority)."""

    def extractor(event, _context):
        value = event
        for step in (s.strip() for s in spec.split("|")):
            if step.startswith("/"):
                value = pointer(value, step)
            elif step == "base64":
                value = base64.b64decode(value)
            elif step == "json":
                value = json.loads(value)
        headers = {k.lower(): v for k, v in value.items()}
        return (
            headers["x-datadog-trace-id"],
            headers["x-datadog-parent-id"],
            headers["x-datadog-sampling-priority"],
        )

    return extractor


def context_fields(ctx):
    if ctx is None:
        return {
            "trace_id": None,
            "trace_id_high": None,
            "parent_id": None,
            "sampling_priority": None,
            "origin": None,
        }
    high = ctx.trace_id >> 64
    if not high and ctx._meta.get("_dd.p.tid"):
        high = int(ctx._meta["_dd.p.tid"], 16)
    return {
        "trace_id": str(ctx.trace_id & MASK64),
        "trace_id_high": f"{high:016x}" if high else None,
        "parent_id": str(ctx.span_id),
        "sampling_priority": int(ctx.sampling_priority),
        "origin": ctx.dd_origin,
    }


def span_tags(ctx):
    """The meta ddtrace leaves for the first span that is not propagated further."""
    if ctx is None:
        return {}
    return {
        k: v
        for k, v in ctx._meta.items()
        if k in ("_dd.parent_id", "_dd.propagation_error") or k.startswith("baggage.")
    }


def propagation_tags(ctx):
    """`_dd.p.*` but the trace id's high half (compared as `trace_id_high`)."""
    if ctx is None:
        return {}
    return {
        k: v
        for k, v in ctx._meta.items()
        if k.startswith("_dd.p.") and k != "_dd.p.tid"
    }


def run(case, fixtures):
    with open(os.path.join(fixtures, case["event"]), encoding="utf-8") as f:
        event = json.load(f)
    if case.get("xray"):
        os.environ["_X_AMZN_TRACE_ID"] = case["xray"]
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)
    merge = bool(case.get("merge"))
    extractor = declarative(case["extractor"]) if case.get("extractor") else None
    ctx, source, _ = extract_dd_trace_context(
        event, LambdaContext(case.get("client_context")), extractor=extractor
    )
    if source == "event":
        out = context_fields(ctx)
        out["span_tags"] = span_tags(ctx)
        out["propagation_tags"] = propagation_tags(ctx)
        if merge:
            xray = _get_xray_trace_context()
            if xray and xray.span_id:
                out["parent_id"] = str(xray.span_id)
        out["source"] = "custom" if extractor else "event"
    elif source == "xray" and merge:
        out = context_fields(ctx)
        out["source"] = "xray"
    else:
        out = context_fields(None)
        out["source"] = "none"
    return out


def in_child(cases_path, fixtures, env, names):
    """The results of `names`, from a fresh interpreter configured with `env`."""
    child_env = {k: v for k, v in os.environ.items() if k not in TRACER_SETTINGS}
    child_env.update(env)
    out = subprocess.run(
        [sys.executable, __file__, cases_path, fixtures, "--only", *names],
        env=child_env,
        capture_output=True,
        check=False,
        timeout=120,
    )
    if out.returncode != 0:
        sys.exit(f"oracle child for {env} failed: {out.stderr.decode(errors='replace')}")
    return json.loads(out.stdout)


def main():
    cases_path, fixtures = sys.argv[1], sys.argv[2]
    with open(cases_path, encoding="utf-8") as f:
        cases = json.load(f)
    if "--only" in sys.argv:
        only = set(sys.argv[sys.argv.index("--only") + 1 :])
        results = {c["name"]: run(c, fixtures) for c in cases if c["name"] in only}
    else:
        results = {}
        by_env = {}
        for case in cases:
            env = case.get("env") or {}
            if env:
                key = json.dumps(env, sort_keys=True)
                by_env.setdefault(key, []).append(case["name"])
            else:
                results[case["name"]] = run(case, fixtures)
        for key, names in by_env.items():
            results.update(in_child(cases_path, fixtures, json.loads(key), names))
    json.dump(results, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
