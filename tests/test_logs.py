"""What the server logs, read from a real uvicorn's output: one JSON object per line with the
request's id, an access line per request and per websocket, one line per chat turn with its
figures, and never a question, an answer or a credential."""

import asyncio
import json

import aiohttp
import pytest
from websockets.asyncio.client import connect

from tests.test_body_limits import server_env, start_uvicorn
from tests.uvicorn_server import stop

QUESTION = "zebra quokka 4711: how many vacation days carry over?"
SECRET = "sk-planted-secret-7f3a9c"
SEED = (
    "from knowledge.models import Document\n"
    "Document.objects.create(title='Leave policy', body='Up to five unused vacation days carry "
    "over to the next year.')\n"
    "from django.core.management import call_command\ncall_command('sync_index', verbosity=0)"
)


@pytest.fixture
def json_server(tmp_path, fake_openai):
    fake_openai.require_api_key(SECRET)
    env = server_env(tmp_path)
    env.update(
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
        OPENAI_HOST="compatible",
        OPENAI_BASE_URL=fake_openai.openai_base_url,
        OPENAI_API_KEY=SECRET,
        OPENAI_CHAT_MODEL="llama3.1",
        LLM_MAX_RETRIES="0",
    )
    log_path = tmp_path / "server.log"
    process, port = start_uvicorn(env, log_path, SEED)
    yield f"127.0.0.1:{port}", log_path
    stop(process)


def _records(log_path) -> list[dict]:
    records = []
    for line in log_path.read_text().splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


@pytest.mark.own_configuration
async def test_json_logs_carry_ids_and_figures_but_no_text(json_server, fake_openai):
    host, log_path = json_server
    ask = {"messages": [{"role": "user", "content": QUESTION}]}
    async with aiohttp.ClientSession(f"http://{host}") as http:
        async with http.post(
            "/chat/stream", json=ask, headers={"X-Request-ID": "trace-abc.123"}
        ) as streamed:
            await streamed.read()
        async with http.post("/chat", json=ask) as plain:
            answer = (await plain.json())["output_text"]
        async with http.get("/healthz", headers={"X-Request-ID": "no spaces allowed"}) as bogus:
            made_id = bogus.headers["X-Request-ID"]
    assert streamed.status == plain.status == 200
    assert streamed.headers["X-Request-ID"] == "trace-abc.123"
    assert len(made_id) == 32
    assert answer
    async with connect(f"ws://{host}/ws/chat/", origin=f"http://{host}") as socket:
        await socket.send(json.dumps({"type": "chat", **ask}))
        while "session_state" not in (event := json.loads(await socket.recv())) or (
            "usage" not in event.get("context", {})
        ):
            assert "error" not in event, event
    await asyncio.sleep(0.5)  # the websocket's access line is written when it closes

    raw = log_path.read_text()
    assert SECRET not in raw
    assert "zebra quokka" not in raw.lower()
    assert answer[:40] not in raw
    records = _records(log_path)
    assert records, raw
    for record in records:
        assert {"time", "level", "logger", "message", "request_id"} <= record.keys(), record

    access = [r for r in records if r["logger"] == "ragsite.access"]
    by_path = {(r["method"], r["path"]): r for r in access}
    stream_line = next(r for r in access if r["request_id"] == "trace-abc.123")
    assert stream_line["path"] == "/chat/stream" and stream_line["status"] == 200
    assert stream_line["latency_ms"] > 0
    assert stream_line["channel"] == "http-stream" and stream_line["conversation_id"]
    assert by_path[("POST", "/chat")]["channel"] == "http"
    assert by_path[("GET", "/healthz")]["request_id"] == made_id
    ws_line = by_path[("WEBSOCKET", "/ws/chat/")]
    assert ws_line["status"] == 101 and ws_line["channel"] == "websocket"

    turns = [r for r in records if r["logger"] == "chat.turn"]
    assert sorted(t["channel"] for t in turns) == ["http", "http-stream", "websocket"]
    for turn in turns:
        assert turn["outcome"] == "completed" and turn["error_kind"] is None
        assert turn["first_token_ms"] > 0 and turn["completion_tokens"] > 0
        assert turn["conversation_id"] and turn["hits"] >= 1


@pytest.mark.own_configuration
async def test_a_failed_turn_logs_its_kind(json_server, fake_openai):
    from tests.fakes import rate_limit

    host, log_path = json_server
    fake_openai.enqueue(rate_limit(retry_after_ms=1000))
    async with aiohttp.ClientSession(f"http://{host}") as http:
        ask = {"messages": [{"role": "user", "content": QUESTION}]}
        async with http.post("/chat/stream", json=ask) as response:
            lines = (await response.text()).splitlines()
    assert response.status == 429  # refused before the stream started
    assert "busy" in lines[-1]
    turn = next(r for r in _records(log_path) if r["logger"] == "chat.turn")
    assert turn["outcome"] == "failed" and turn["error_kind"] == "rate_limited"


def test_text_logs_are_readable_lines(settings):
    """The default format: time, level, logger and message on one line, request id at the end."""
    import logging

    from core import log_context

    assert settings.LOG_FORMAT == "text"
    formatter = logging.Formatter(settings.LOGGING["formatters"]["text"]["format"])
    log_context.start(request_id="r-1")
    record = logging.LogRecord("chat.turn", logging.INFO, __file__, 1, "hello", None, None)
    log_context.ContextFilter().filter(record)
    line = formatter.format(record)
    assert line.endswith("INFO chat.turn hello [request_id=r-1]")
