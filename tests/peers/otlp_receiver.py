"""A minimal OTLP/HTTP receiver for the end-to-end tests: decodes every export with the
OpenTelemetry project's own `opentelemetry-proto` package and keeps what it decoded.

Run with the `testagent` venv's python (tests/peers/install). It listens on 127.0.0.1, on the
port given as the only argument (0: a free one), and prints `listening <port>` once ready.

    POST /v1/traces, /v1/metrics   an export (protobuf, optionally gzip): 200 with an empty
                                   response message, or the next scripted failure
    POST /control/fail             body `<status> <count>`: answer the next <count> exports with
                                   <status> (a google.rpc.Status body; 503 adds Retry-After: 0)
    GET  /received                 JSON: every export as {path, status, headers, encoding,
                                   request}, `request` the decoded message as proto JSON
                                   (ids as base64, 64-bit integers as strings)
"""
import gzip
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

SIGNALS = {
    "/v1/traces": (ExportTraceServiceRequest, ExportTraceServiceResponse),
    "/v1/metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse),
}

lock = threading.Lock()
received = []
failures = []  # statuses to answer the next exports with


def rpc_status(code, message):
    """google.rpc.Status{code, message}, encoded by hand (the package is not a dependency)."""
    text = message.encode()
    return b"\x08" + bytes([code]) + b"\x12" + bytes([len(text)]) + text


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", content_type="application/x-protobuf", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path != "/received":
            return self.reply(404)
        with lock:
            body = json.dumps(received).encode()
        self.reply(200, body, "application/json")

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/control/fail":
            status, count = raw.decode().split()
            with lock:
                failures.extend([int(status)] * int(count))
            return self.reply(204)
        if self.path not in SIGNALS:
            return self.reply(404)
        request_type, response_type = SIGNALS[self.path]
        encoding = self.headers.get("Content-Encoding", "")
        try:
            body = gzip.decompress(raw) if encoding == "gzip" else raw
            message = request_type.FromString(body)
            decoded = MessageToDict(message, preserving_proto_field_name=True)
            error = None
        except Exception as e:  # a body the official decoder refuses is the finding
            decoded, error = None, "%s: %s" % (type(e).__name__, e)
        with lock:
            status = failures.pop(0) if failures else (400 if error else 200)
            received.append(
                {
                    "path": self.path,
                    "status": status,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "encoding": encoding,
                    "request": decoded,
                    "error": error,
                }
            )
        if status == 200:
            return self.reply(200, response_type().SerializeToString())
        extra = [("Retry-After", "0")] if status == 503 else []
        self.reply(status, rpc_status(status % 256, "scripted %d" % status), extra=extra)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print("listening %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
