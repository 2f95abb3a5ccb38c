"""A chat turn's trace and figures: one span for the turn with a span per phase (loading the
conversation, retrieval, the LLM call, storing the answer), and the chat metrics.

The lean chat handler skips Django's middleware and the relay skips the SDK's `create`, so
off-the-shelf instrumentors would miss both: the spans are made here, where the work happens,
for every channel alike. With telemetry off (core/telemetry.py) every call is a no-op.
"""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import Status, StatusCode

from core import log_context
from core.telemetry import meter, tracer

# Turns running, by channel: a plain count read when the metrics are collected, not a
# measurement recorded through the SDK twice per turn (attribute hashing, locks).
_running: Counter[str] = Counter()


def _observe_running(options: CallbackOptions):
    return [Observation(count, {"ragsite.channel": ch}) for ch, count in _running.items()]


meter.create_observable_up_down_counter(
    "ragsite.chat.active", callbacks=[_observe_running], description="chat turns running"
)
time_to_first_token = meter.create_histogram(
    "ragsite.chat.time_to_first_token", unit="s", description="question to first answer token"
)
token_usage = meter.create_histogram(
    "gen_ai.client.token.usage", unit="{token}", description="tokens per LLM call"
)
errors = meter.create_counter("ragsite.chat.errors", description="failed chat turns by kind")


class TurnTrace:
    def __init__(self):
        channel = log_context.current().get("channel") or "internal"
        self.channel = channel
        self.attributes = {"ragsite.channel": channel}
        self.span = tracer.start_span("chat turn", attributes=self.attributes)
        self.context = trace.set_span_in_context(self.span)
        self.llm = None
        self.ended = False
        _running[channel] += 1

    @contextmanager
    def phase(self, name: str, **attributes):
        """A child span of the turn around the block. Not made the current span: attaching and
        detaching contexts twice per phase cost more CPU per chat than the spans themselves, and
        nothing below a phase records spans of its own."""
        span = tracer.start_span(name, context=self.context, attributes=attributes)
        try:
            yield span
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            span.end()

    def llm_started(self, model: str, system: str) -> None:
        self.llm = tracer.start_span(
            f"chat {model}",
            context=self.context,
            kind=trace.SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": system,
                "gen_ai.request.model": model,
            },
        )

    def finish(self, usage: dict, first_token_s: float | None, finish_reason, error_kind=None):
        """End the LLM span and the turn (once), recording what the turn cost."""
        if self.ended:
            return
        self.ended = True
        _running[self.channel] -= 1
        if self.llm is not None:
            self.llm.set_attributes(_llm_figures(usage, first_token_s, finish_reason))
            if error_kind:
                self.llm.set_status(Status(StatusCode.ERROR, error_kind))
            self.llm.end()
        for kind in ("input", "output"):
            count = usage.get("prompt_tokens" if kind == "input" else "completion_tokens")
            if count:
                token_usage.record(count, {**self.attributes, "gen_ai.token.type": kind})
        if first_token_s is not None:
            time_to_first_token.record(first_token_s, self.attributes)
        if error_kind:
            self.fail(error_kind)
        self.span.end()

    def fail(self, error_kind: str) -> None:
        errors.add(1, {**self.attributes, "error.type": error_kind})
        self.span.set_attribute("error.type", error_kind)
        self.span.set_status(Status(StatusCode.ERROR, error_kind))

    def failed_before_answer(self, error_kind: str) -> None:
        self.finish({}, None, None, error_kind)


def _llm_figures(usage: dict, first_token_s, finish_reason) -> dict:
    figures = {
        "gen_ai.usage.input_tokens": usage.get("prompt_tokens") or 0,
        "gen_ai.usage.output_tokens": usage.get("completion_tokens") or 0,
    }
    if first_token_s is not None:
        figures["ragsite.time_to_first_token_ms"] = round(first_token_s * 1000, 1)
    if finish_reason:
        figures["gen_ai.response.finish_reasons"] = (finish_reason,)
    return figures
