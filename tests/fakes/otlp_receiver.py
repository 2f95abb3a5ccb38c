"""An OTLP/HTTP receiver (the collector's /v1/traces and /v1/metrics endpoints, protobuf), so
tests read the spans and metrics a real exporter sent over real HTTP."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def _value(any_value):
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(v) for v in any_value.array_value.values)
    return getattr(any_value, kind) if kind else None


def _attributes(pairs) -> dict:
    return {pair.key: _value(pair.value) for pair in pairs}


class OTLPReceiver:
    def __init__(self, port: int = 0):
        self.spans: list[dict] = []
        self.metrics: dict[str, list[dict]] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/v1/traces":
                    receiver._traces(body)
                    reply = ExportTraceServiceResponse()
                elif self.path == "/v1/metrics":
                    receiver._metrics(body)
                    reply = ExportMetricsServiceResponse()
                else:
                    self.send_error(404)
                    return
                payload = reply.SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OTLPReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _traces(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            service = _attributes(resource.resource.attributes).get("service.name")
            for scope in resource.scope_spans:
                for span in scope.spans:
                    with self.lock:
                        self.spans.append(
                            {
                                "name": span.name,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent_id": span.parent_span_id.hex(),
                                "attributes": _attributes(span.attributes),
                                "status": span.status.code,
                                "service": service,
                            }
                        )

    def _metrics(self, body: bytes) -> None:
        request = ExportMetricsServiceRequest.FromString(body)
        for resource in request.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    kind = metric.WhichOneof("data")
                    points = [
                        {"attributes": _attributes(p.attributes), "point": p}
                        for p in getattr(metric, kind).data_points
                    ]
                    with self.lock:
                        self.metrics.setdefault(metric.name, []).extend(points)

    def children(self, span: dict) -> dict[str, dict]:
        with self.lock:
            return {s["name"]: s for s in self.spans if s["parent_id"] == span["span_id"]}


# A stand-in collector for bench runs: python -m tests.fakes.otlp_receiver --port N
if __name__ == "__main__":
    import argparse
    import time

    parser = argparse.ArgumentParser(description="an OTLP/HTTP receiver that counts what it gets")
    parser.add_argument("--port", type=int, default=4318)
    port = parser.parse_args().port
    receiver = OTLPReceiver(port)
    with receiver:
        print(f"OTLP receiver on {receiver.url}", flush=True)
        while True:
            time.sleep(10)
            print(f"{len(receiver.spans)} spans, {len(receiver.metrics)} metrics", flush=True)
