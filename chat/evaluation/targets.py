"""Where evaluate's questions go: this process's chat pipeline, or a server's `POST /chat`.

In process, a question takes the path `POST /chat` takes (chat/api.py): the same request parser,
`pipeline.prepare` and `pipeline.run_to_completion`, as the given user; only the HTTP layer and the
per-caller limits are left out. Over HTTP it is a plain program calling the API, so anonymous.
"""

import logging
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx2
import orjson
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from chat import pipeline, store
from chat.llm import answerers
from chat.llm.base import AnswerError
from chat.llm.errors import retry_after_seconds
from chat.protocol import ProtocolError, parse_request
from knowledge.embeddings import embedders
from knowledge.search import backends

log = logging.getLogger(__name__)


@dataclass
class Reply:
    answer: str = ""
    context: dict = field(default_factory=dict)
    error: str | None = None  # nothing was answered, and why
    stopped: str | None = None  # the answer broke off after some text, and why
    latency_s: float = 0.0


class InProcess:
    name = "in-process"

    def __init__(self, user):
        self.user = user

    async def ask(self, body: dict) -> Reply:
        started = time.perf_counter()
        try:
            turn = await pipeline.prepare(parse_request(body), self.user, None)
        except (ProtocolError, AnswerError) as exc:
            return Reply(error=exc.message, latency_s=_since(started))
        except Exception as exc:  # as POST /chat answers a 500: this question fails, not the run
            log.exception("evaluate: the question failed")
            return Reply(error=f"failed: {exc!r}", latency_s=_since(started))
        try:
            result = await pipeline.run_to_completion(turn)
        except Exception as exc:
            log.exception("evaluate: the answer failed")
            return Reply(error=f"failed: {exc!r}", latency_s=_since(started))
        finally:
            await turn.close()
        return _reply(result, _since(started))

    async def close(self) -> None:
        """What the server's shutdown does for the clients this event loop built."""
        for per_loop in (answerers, embedders, backends, store.turns):
            await per_loop.close_all()


class Retry(Exception):
    def __init__(self, message: str, retry_after: float | None):
        super().__init__(message)
        self.retry_after = retry_after


def _wait(state) -> float:
    """The server's Retry-After when it sent one (at most a minute), else exponential."""
    exc = state.outcome.exception()
    if isinstance(exc, Retry) and exc.retry_after:
        return min(exc.retry_after, 60.0)
    return wait_exponential(multiplier=0.5, max=10)(state)


class OverHTTP:
    """`POST /chat` on a running server (the URL of the site, or of its /chat endpoint)."""

    name = "http"
    ATTEMPTS = 5

    def __init__(self, url: str, timeout: float, concurrency: int):
        path = urlsplit(url).path.rstrip("/")
        self.url = url if path.endswith("/chat") else url.rstrip("/") + "/chat"
        self.client = httpx2.AsyncClient(
            timeout=timeout,
            limits=httpx2.Limits(max_connections=concurrency),
            headers={"Content-Type": "application/json"},
        )

    async def ask(self, body: dict) -> Reply:
        started = time.perf_counter()
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type((Retry, httpx2.TransportError)),
                wait=_wait,
                stop=stop_after_attempt(self.ATTEMPTS),
                reraise=True,
            ):
                with attempt:
                    response = await self._post(body)
        except (Retry, httpx2.HTTPError) as exc:
            return Reply(error=str(exc) or type(exc).__name__, latency_s=_since(started))
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            return Reply(
                error=f"HTTP {response.status_code}: the response is not a JSON object",
                latency_s=_since(started),
            )
        if response.status_code != 200:
            message = data.get("error") or "no error message"
            return Reply(error=f"HTTP {response.status_code}: {message}", latency_s=_since(started))
        return _reply(data, _since(started))

    async def _post(self, body: dict) -> httpx2.Response:
        response = await self.client.post(self.url, content=orjson.dumps(body))
        if response.status_code in (429, 503):
            await response.aread()
            raise Retry(
                f"HTTP {response.status_code} from {self.url}",
                retry_after_seconds(response.headers),
            )
        return response

    async def close(self) -> None:
        await self.client.aclose()


def _since(started: float) -> float:
    return time.perf_counter() - started


def _reply(result: dict, latency: float) -> Reply:
    answer = result.get("output_text") or ""
    error = result.get("error") or None
    context = result.get("context")
    return Reply(
        answer=answer,
        context=context if isinstance(context, dict) else {},
        error=error if not answer else None,
        stopped=error if answer else None,
        latency_s=latency,
    )


def retrieved_citations(context: dict) -> list[str]:
    """One citation per retrieved passage, in rank order: from `data_points.sources`, or, for
    servers that send only the passages, the `"<citation>: <text>"` prefix of `data_points.text`."""
    points = context.get("data_points") or {}
    sources = points.get("sources")
    if isinstance(sources, list) and sources:
        cited = (s.get("citation") for s in sources if isinstance(s, dict))
        return [c for c in cited if isinstance(c, str)]
    texts = points.get("text") or []
    return [t.split(": ", 1)[0] for t in texts if isinstance(t, str) and ": " in t]


def passages_text(context: dict) -> str:
    texts = (context.get("data_points") or {}).get("text") or []
    return "\n\n".join(t for t in texts if isinstance(t, str))
