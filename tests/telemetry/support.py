"""Helpers for the telemetry tests: recording one of each instrument,
scraping `/metrics`, and `OtlpCollector`, a tiny OTLP/gRPC collector.

`OtlpCollector` is a real `grpc.server` on 127.0.0.1 port 0 implementing the
OTLP trace and metrics services; it keeps every export request it receives.
"""

from __future__ import annotations

import re
import threading
import urllib.request
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from gateway.telemetry import Instruments

TENANT = "acme"
MODEL = "amazon.titan-image-generator-v2:0"
IMAGE_LABELS = {
    "tenant": TENANT,
    "model": MODEL,
    "task_type": "TEXT_IMAGE",
    "quality": "premium",
    "size_class": "<=1024x1024",
}

# name{labels} value — the text exposition format, one sample per line.
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")
_LABEL = re.compile(r'(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')


def record_one_of_each(instruments: Instruments) -> None:
    """Record through every record method once, with `IMAGE_LABELS`."""
    instruments.image(**IMAGE_LABELS, outcome="delivered")
    instruments.cost(80_000, **IMAGE_LABELS)
    instruments.request_duration(4.2, "titan.gateway.v1.ImageService/Generate", "OK", TENANT)
    instruments.time_to_first_image(3.1, TENANT, MODEL, "TEXT_IMAGE")
    instruments.backend_duration(3.0, MODEL, "ok")
    instruments.policy_decision("premium-to-standard", "rewrite")
    instruments.moderation_block("violence")
    instruments.quota_refusal("images_per_minute")
    instruments.backend_retry(MODEL, "throttled")
    instruments.backend_throttle(MODEL)
    instruments.observe_budgets(lambda: [(TENANT, "month", 12_345_678)])


Sample = tuple[str, dict[str, str], float]


def scrape(port: int) -> list[Sample]:
    """GET /metrics on 127.0.0.1:`port` and parse every sample line."""
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        body: str = response.read().decode("utf-8")
    samples = []
    for line in body.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        match = _SAMPLE.match(line)
        assert match, f"unparsable sample line: {line!r}"
        labels = {m["key"]: m["value"] for m in _LABEL.finditer(match["labels"] or "")}
        samples.append((match["name"], labels, float(match["value"])))
    return samples


def find(samples: list[Sample], name: str, **labels: str) -> list[Sample]:
    """The samples called `name` whose labels include `labels`."""
    return [s for s in samples if s[0] == name and labels.items() <= s[1].items()]


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, collector: OtlpCollector) -> None:
        self._collector = collector

    def Export(self, request: Any, context: Any) -> Any:
        with self._collector.lock:
            self._collector.trace_requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class _MetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, collector: OtlpCollector) -> None:
        self._collector = collector

    def Export(self, request: Any, context: Any) -> Any:
        with self._collector.lock:
            self._collector.metric_requests.append(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class OtlpCollector:
    """An OTLP/gRPC receiver for traces and metrics on 127.0.0.1."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.trace_requests: list[Any] = []
        self.metric_requests: list[Any] = []
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        # The generated registration functions carry no annotations.
        add_trace = trace_service_pb2_grpc.add_TraceServiceServicer_to_server
        add_metrics = metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server
        add_trace(_TraceService(self), self._server)  # type: ignore[no-untyped-call]
        add_metrics(_MetricsService(self), self._server)  # type: ignore[no-untyped-call]
        self.port: int = self._server.add_insecure_port("127.0.0.1:0")

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop(grace=None).wait(5)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def span_names(self) -> set[str]:
        with self.lock:
            return {
                span.name
                for request in self.trace_requests
                for resource_spans in request.resource_spans
                for scope_spans in resource_spans.scope_spans
                for span in scope_spans.spans
            }

    def metric_names(self) -> set[str]:
        with self.lock:
            return {
                metric.name
                for request in self.metric_requests
                for resource_metrics in request.resource_metrics
                for scope_metrics in resource_metrics.scope_metrics
                for metric in scope_metrics.metrics
            }

    def service_names(self) -> set[str]:
        with self.lock:
            resources = [rs.resource for r in self.trace_requests for rs in r.resource_spans]
            resources += [rm.resource for r in self.metric_requests for rm in r.resource_metrics]
        return {
            attribute.value.string_value
            for resource in resources
            for attribute in resource.attributes
            if attribute.key == "service.name"
        }
