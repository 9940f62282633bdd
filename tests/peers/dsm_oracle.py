"""Data-streams vector oracle: ddtrace 4.16.0 computes checkpoints and decodes contexts.

Reads JSON lines on stdin, writes one JSON line per input line on stdout:
  {"op": "checkpoint", "service", "env", "tags": [...], "now_ms": int, "parent": b64|null}
    -> {"hash": "<u64>", "parent_hash": "<u64>", "encoded": "<b64>",
        "pathway_latency_ms": int, "edge_latency_ms": int}
  {"op": "decode", "b64": str}
    -> {"hash": "<u64>", "pathway_start_ms": int, "edge_start_ms": int}
  {"op": "sketch", "values": [float]} -> {"hex": "<ddtrace DDSketch().to_proto() hex>"}

Runs offline (test-peers.md §4.4): ddtrace's own DataStreamsCtx, hashing and codec, driven through
a stub processor that records checkpoints instead of sending them. Process tags must be off
(DD_EXPERIMENTAL_PROPAGATE_PROCESS_TAGS_ENABLED=false), which is what ddlambda hashes match.
"""

import base64
import json
import sys
import types

from ddtrace.internal import process_tags
from ddtrace.internal.datastreams.processor import DataStreamsCtx, DataStreamsProcessor
from ddtrace.internal.native import DDSketch


class StubProcessor:
    """What DataStreamsCtx needs from a processor: the codec methods and a checkpoint sink."""

    decode_pathway = DataStreamsProcessor.decode_pathway
    decode_pathway_b64 = DataStreamsProcessor.decode_pathway_b64
    new_pathway = DataStreamsProcessor.new_pathway

    def __init__(self):
        self._current_context = types.SimpleNamespace(value=None)
        self.points = []

    def on_checkpoint_creation(
        self, hash_value, parent_hash, edge_tags, now_sec, edge_latency_sec, full_pathway_latency_sec, **_
    ):
        self.points.append((hash_value, parent_hash, edge_latency_sec, full_pathway_latency_sec))


def checkpoint(req):
    proc = StubProcessor()
    now_sec = req["now_ms"] / 1e3
    ctx = proc.decode_pathway_b64(req["parent"]) if req.get("parent") else proc.new_pathway(now_sec)
    assert isinstance(ctx, DataStreamsCtx)
    ctx.service = req["service"]
    ctx.env = req["env"]
    ctx.set_checkpoint(req["tags"], now_sec=now_sec)
    hash_value, parent_hash, edge_sec, pathway_sec = proc.points[-1]
    return {
        "hash": str(hash_value),
        "parent_hash": str(parent_hash),
        "encoded": ctx.encode_b64(),
        "pathway_latency_ms": round(pathway_sec * 1e3),
        "edge_latency_ms": round(edge_sec * 1e3),
    }


def decode(req):
    proc = StubProcessor()
    raw = base64.b64decode(req["b64"])
    ctx = proc.decode_pathway(raw)
    return {
        "hash": str(ctx.hash),
        "pathway_start_ms": round(ctx.pathway_start_sec * 1e3),
        "edge_start_ms": round(ctx.current_edge_start_sec * 1e3),
    }


def sketch(req):
    s = DDSketch()
    for v in req["values"]:
        s.add(v)
    return {"hex": bytes(s.to_proto()).hex()}


def main():
    if process_tags.base_hash_bytes != b"":
        sys.exit("dsm_oracle: process tags are on; set DD_EXPERIMENTAL_PROPAGATE_PROCESS_TAGS_ENABLED=false")
    ops = {"checkpoint": checkpoint, "decode": decode, "sketch": sketch}
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        print(json.dumps(ops[req["op"]](req)), flush=True)


if __name__ == "__main__":
    main()
