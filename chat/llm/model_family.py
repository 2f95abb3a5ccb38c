"""Which request parameters a chat model takes, decided once from configuration.

Reasoning models (OpenAI's o-series and GPT-5 family, on OpenAI and Azure OpenAI) refuse
`max_tokens` (they take `max_completion_tokens`, which also pays for their hidden reasoning) and
any `temperature` but the default, and take `reasoning_effort`. `OPENAI_REASONING_MODEL=auto`
recognises them by the model name, or on Azure by the deployment name, which is reliable only
when the deployment is named after its model: set `true` or `false` otherwise.
"""

import re
from typing import Any

from django.conf import settings

_REASONING_NAME = re.compile(r"(^|[/:_.-])(o[1-9](-mini|-pro)?|gpt-5)([/:_.-]|$)", re.IGNORECASE)
EFFORTS = ("minimal", "low", "medium", "high")
# What a short side call (query rewrite, follow-up questions) may spend on reasoning before it
# writes its few words: without headroom a reasoning model uses the budget up and returns nothing.
SIDE_CALL_BUDGET = 2048
SIDE_CALL_EFFORT = "low"


def is_reasoning_model(model: str) -> bool:
    configured = settings.OPENAI_REASONING_MODEL
    if configured != "auto":
        return configured == "true"
    return bool(_REASONING_NAME.search(model or ""))


def side_call_params(model: str, max_tokens: int) -> dict[str, Any]:
    """Parameters of a short, deterministic side call."""
    if is_reasoning_model(model):
        return {"max_completion_tokens": SIDE_CALL_BUDGET, "reasoning_effort": SIDE_CALL_EFFORT}
    return {"max_tokens": max_tokens, "temperature": 0}


def answer_params(model: str, temperature: float | None, effort: str | None) -> dict[str, Any]:
    """Parameters of the answer itself, from the request's overrides and the settings."""
    if is_reasoning_model(model):
        effort = effort or settings.OPENAI_REASONING_EFFORT
        return {"reasoning_effort": effort} if effort else {}
    return {} if temperature is None else {"temperature": temperature}
