"""OpenTelemetry as an operator switches it on: the standard OTEL_* variables, a real uvicorn,
the real OTLP exporter sending over real HTTP to a receiver, and the span tree and figures of
one HTTP chat, one websocket chat and one index sync read back from what arrived."""

import json
import subprocess
import sys

import aiohttp
import pytest
from websockets.asyncio.client import connect

from tests.chat_helpers import eventually
from tests.fakes.otlp_receiver import OTLPReceiver
from tests.test_body_limits import server_env, start_uvicorn
from tests.test_logs import QUESTION, SECRET, SEED
from tests.uvicorn_server import ROOT, stop

PHASES = {"load conversation", "retrieval", "chat llama3.1", "store answer"}


@pytest.fixture
def receiver():
    with OTLPReceiver() as running:
        yield running


@pytest.fixture
def otel_env(tmp_path, fake_openai, receiver):
    fake_openai.require_api_key(SECRET)
    env = server_env(tmp_path)
    env.update(
        OPENAI_HOST="compatible",
        OPENAI_BASE_URL=fake_openai.openai_base_url,
        OPENAI_API_KEY=SECRET,
        OPENAI_CHAT_MODEL="llama3.1",
        LLM_MAX_RETRIES="0",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
        OTEL_SERVICE_NAME="ragsite-test",
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_METRIC_EXPORT_INTERVAL="300",
    )
    return env


@pytest.fixture
def traced_server(tmp_path, otel_env):
    process, port = start_uvicorn(otel_env, tmp_path / "server.log", SEED)
    yield f"127.0.0.1:{port}"
    stop(process)


def _turns(receiver) -> list[dict]:
    with receiver.lock:
        return [s for s in receiver.spans if s["name"] == "chat turn"]


@pytest.mark.own_configuration
async def test_each_chat_turn_is_one_trace_with_its_phases(traced_server, receiver):
    host = traced_server
    ask = {"messages": [{"role": "user", "content": QUESTION}]}
    async with aiohttp.ClientSession(f"http://{host}") as http:
        async with http.post("/chat/stream", json=ask) as response:
            assert response.status == 200
            await response.read()
    async with connect(f"ws://{host}/ws/chat/", origin=f"http://{host}") as socket:
        await socket.send(json.dumps({"type": "chat", **ask}))
        while "usage" not in (event := json.loads(await socket.recv())).get("context", {}):
            assert "error" not in event, event

    await eventually(lambda: len(_turns(receiver)) == 2, seconds=20, what="two turn spans")
    await eventually(
        lambda: all(PHASES <= receiver.children(t).keys() for t in _turns(receiver)),
        seconds=20,
        what="every phase's span",
    )
    by_channel = {t["attributes"]["ragsite.channel"]: t for t in _turns(receiver)}
    assert by_channel.keys() == {"http-stream", "websocket"}
    for turn in by_channel.values():
        assert turn["service"] == "ragsite-test"
        assert turn["attributes"]["ragsite.conversation_id"]
        phases = receiver.children(turn)
        assert {p["trace_id"] for p in phases.values()} == {turn["trace_id"]}
        retrieval = phases["retrieval"]["attributes"]
        assert retrieval["ragsite.search.backend"] == "embedded"
        assert retrieval["ragsite.search.mode"] == "text"
        assert retrieval["ragsite.search.top"] == 5 and retrieval["ragsite.search.hits"] == 1
        llm = phases["chat llama3.1"]["attributes"]
        assert llm["gen_ai.operation.name"] == "chat"
        assert llm["gen_ai.request.model"] == "llama3.1"
        assert llm["gen_ai.usage.input_tokens"] > 0 and llm["gen_ai.usage.output_tokens"] > 0
        assert llm["ragsite.time_to_first_token_ms"] > 0
        assert llm["gen_ai.response.finish_reasons"] == ("stop",)
        for span in (turn, *phases.values()):  # no text of the question in any attribute
            assert not any("zebra" in str(v).lower() for v in span["attributes"].values())

    await eventually(
        lambda: (
            {"ragsite.chat.time_to_first_token", "gen_ai.client.token.usage"}
            <= receiver.metrics.keys()
        ),
        seconds=20,
        what="the chat metrics",
    )
    token_types = {
        p["attributes"]["gen_ai.token.type"] for p in receiver.metrics["gen_ai.client.token.usage"]
    }
    assert token_types == {"input", "output"}
    # Chats in flight: the turn was counted on its channel, and is no longer once it ended.
    await eventually(
        lambda: any(
            p["attributes"] == {"ragsite.channel": "http-stream"} and p["point"].as_int == 0
            for p in receiver.metrics.get("ragsite.chat.active", [])
        ),
        seconds=20,
        what="no chat in flight after the turn",
    )


@pytest.mark.own_configuration
async def test_a_failed_turn_is_an_error_span_and_counted(traced_server, receiver, fake_openai):
    from tests.fakes import rate_limit

    fake_openai.enqueue(rate_limit(retry_after_ms=1000))
    ask = {"messages": [{"role": "user", "content": QUESTION}]}
    async with aiohttp.ClientSession(f"http://{traced_server}") as http:
        async with http.post("/chat", json=ask) as response:
            assert response.status == 429
    await eventually(lambda: len(_turns(receiver)) == 1, seconds=20, what="the turn span")
    (turn,) = _turns(receiver)
    assert turn["status"] == 2  # STATUS_CODE_ERROR
    assert turn["attributes"]["error.type"] == "rate_limited"
    await eventually(
        lambda: any(
            p["attributes"].get("error.type") == "rate_limited"
            for p in receiver.metrics.get("ragsite.chat.errors", [])
        ),
        seconds=20,
        what="the error counted",
    )


@pytest.mark.own_configuration
def test_an_index_sync_task_is_a_span(tmp_path, otel_env, receiver):
    script = (
        "from knowledge.models import Document\n"
        "doc = Document.objects.create(title='Leave', body='Five days carry over.')\n"
        "from core import telemetry\n"
        "telemetry.configure()\n"
        "from knowledge.tasks import sync_document\n"
        "sync_document.call(doc.pk)\n"
        "telemetry.shutdown()\n"
    )
    _manage_shell(script, otel_env)
    syncs = [s for s in receiver.spans if s["name"] == "index sync"]
    assert len(syncs) == 1
    assert syncs[0]["attributes"]["ragsite.index.outcome"].startswith("indexed")


@pytest.mark.own_configuration
def test_the_task_worker_reports_documents_waiting_for_the_index_and_failed(otel_env, receiver):
    script = (
        "from knowledge.models import Document, IndexStatus\n"
        "for title in ('Leave', 'Travel', 'Expenses'):\n"
        "    Document.objects.create(title=title, body='Five days carry over.')\n"
        "Document.objects.filter(title='Leave').update(index_status=IndexStatus.FAILED)\n"
        "from core import telemetry\n"
        "from knowledge.index_telemetry import observe_queue\n"
        "telemetry.configure()\n"
        "observe_queue()  # as the task worker does at start\n"
        "telemetry.shutdown()\n"
    )
    _manage_shell(script, otel_env)
    last = {
        p["attributes"]["ragsite.index.state"]: p["point"].as_int
        for p in receiver.metrics["ragsite.index.documents"]
    }
    assert last == {"pending": 2, "failed": 1}


def test_azure_monitor_without_its_package_stops_start_up_saying_so(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from core import telemetry

    monkeypatch.setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", "InstrumentationKey=00000000")
    monkeypatch.setattr(telemetry, "_configured", False)
    monkeypatch.setitem(sys.modules, "azure.monitor.opentelemetry", None)
    with pytest.raises(ImproperlyConfigured, match="azure-monitor-opentelemetry"):
        telemetry.configure()


def test_off_by_default(monkeypatch):
    from core import telemetry

    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("APPLICATIONINSIGHTS_CONNECTION_STRING", raising=False)
    assert telemetry.configure() is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert telemetry.wanted() is None


def _varied_spans() -> list:
    """Spans with everything OTLP carries: resources equal but distinct and different, scopes
    with versions, schemas and attributes, every attribute type, events, links, a remote parent
    with trace state, every kind, statuses, dropped attributes; interleaved."""
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanLimits, TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

    memory = InMemorySpanExporter()
    tracers = []
    for resource, limits in (
        (Resource({"service.name": "a", "n": 1}, schema_url="https://schemas/1"), None),
        (Resource({"service.name": "a", "n": 1}, schema_url="https://schemas/1"), None),
        (Resource({"service.name": "b"}), SpanLimits(max_span_attributes=3)),
    ):
        provider = TracerProvider(resource=resource, span_limits=limits)
        provider.add_span_processor(SimpleSpanProcessor(memory))
        tracers += [
            provider.get_tracer("ragsite"),
            provider.get_tracer("other", "1.2", schema_url="https://s", attributes={"k": "v"}),
        ]
    remote = SpanContext(
        0x1234,
        0x99,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=trace.TraceState([("vendor", "x"), ("other", "y")]),
    )
    attributes = {
        "s": "text", "empty": "", "i": 7, "zero": 0, "f": 0.5, "b": True, "no": False,
        "bytes": b"\x00\x01", "strs": ("a", "b"), "ints": [1, 2], "nothing_in": (),
        "map": {"x": 1, "y": ["z"], "z": {"deep": 1.5}}, "none": None,
    }  # fmt: skip
    for i, kind in enumerate(list(SpanKind) * 2):
        tracer = tracers[(i * 5) % len(tracers)]
        parent = trace.set_span_in_context(trace.NonRecordingSpan(remote)) if i % 3 == 0 else None
        links = [Link(remote, {"l": i})] if i % 2 else ()
        span = tracer.start_span(f"span {i}", parent, kind, attributes, links)
        span.add_event("step", {"n": i})
        if i % 4 == 1:
            span.record_exception(ValueError("boom"))
            span.set_status(Status(StatusCode.ERROR, "boom"))
        elif i % 4 == 2:
            span.set_status(Status(StatusCode.OK))
        span.end()
    return list(memory.get_finished_spans())


def test_the_lean_span_encoder_sends_the_bytes_the_sdk_encoder_sends():
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from core import span_export

    spans = _varied_spans()
    ours = span_export.encode_spans(spans)
    assert ours.SerializeToString() == encode_spans(spans).SerializeToString()
    assert [len(r.scope_spans) for r in ours.resource_spans] == [2, 2]  # a, b; equal ones merged
    assert span_export.encode_spans([]).SerializeToString() == b""


def test_the_otlp_exporter_encodes_with_the_lean_encoder(monkeypatch, receiver):
    from opentelemetry.exporter.otlp.proto.http import trace_exporter

    from core import span_export

    calls, encode = [], span_export.encode_spans

    def counting(spans):
        calls.append(len(spans))
        return encode(spans)

    monkeypatch.setattr(trace_exporter, "encode_spans", trace_exporter.encode_spans)
    monkeypatch.setattr(span_export, "encode_spans", counting)
    span_export.install()
    spans = _varied_spans()
    exporter = trace_exporter.OTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces")
    assert exporter.export(spans).name == "SUCCESS"
    assert calls == [len(spans)]
    assert sorted(s["name"] for s in receiver.spans) == sorted(s.name for s in spans)


def _manage_shell(script: str, env: dict) -> None:
    """`script` in a fresh `manage.py shell` process: migrated, then run, with `env` set."""
    prelude = (
        "from django.core.management import call_command\ncall_command('migrate', verbosity=0)\n"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", prelude + script],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
