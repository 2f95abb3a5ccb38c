"""OpenTelemetry, off unless the standard variables ask for it.

`OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) sends traces and metrics
over OTLP/HTTP, configured by the SDK's own `OTEL_*` variables (service name, headers, sampling,
batch delays); `APPLICATIONINSIGHTS_CONNECTION_STRING` sends them to Azure Monitor instead.
Without either, the API's no-op tracer and meter cost next to nothing, and the code that
records spans and figures is the same either way.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured
from opentelemetry import metrics, trace

tracer = trace.get_tracer("ragsite")
meter = metrics.get_meter("ragsite")

_configured = False


def wanted() -> str | None:
    """Which exporter the environment asks for: "azure", "otlp" or None."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING"):
        return "azure"
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    ):
        return "otlp"
    return None


def configure() -> str | None:
    """Install the SDK's providers once per process, if wanted; returns the exporter used."""
    global _configured
    exporter = wanted()
    if exporter is None or _configured:
        return exporter
    _configured = True
    if exporter == "azure":
        _azure_monitor()
    else:
        _otlp()
    return exporter


def _otlp() -> None:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from core import span_export

    span_export.install()  # the same OTLP requests, encoded for a third of the CPU
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "ragsite")})
    tracing = TracerProvider(resource=resource)
    tracing.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(tracing)
    reader = PeriodicExportingMetricReader(OTLPMetricExporter())
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))


def _azure_monitor() -> None:
    try:
        from azure.monitor.opentelemetry import configure_azure_monitor
    except ImportError:
        raise ImproperlyConfigured(
            "Environment variable APPLICATIONINSIGHTS_CONNECTION_STRING: Azure Monitor export "
            "needs the azure-monitor-opentelemetry package (pip install "
            "azure-monitor-opentelemetry)."
        ) from None
    configure_azure_monitor()


def shutdown() -> None:
    """Flush what is batched (a server or worker stopping)."""
    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider()):
        flush = getattr(provider, "shutdown", None)
        if flush is not None:
            flush()
