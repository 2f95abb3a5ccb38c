"""The prompt's history within a token budget: the newest turns are kept, the oldest dropped."""

from typing import Any

from knowledge.tokens import count_tokens

# Per-message framing the chat format adds around each message's content.
MESSAGE_OVERHEAD_TOKENS = 4


def trim_history(history: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    kept: list[dict[str, Any]] = []
    used = 0
    for message in reversed(history):
        cost = count_tokens(message["content"]) + MESSAGE_OVERHEAD_TOKENS
        if used + cost > budget:
            break
        kept.append(message)
        used += cost
    kept.reverse()
    # A history that starts with an assistant reply has lost its question: drop the orphan.
    while kept and kept[0]["role"] == "assistant":
        kept.pop(0)
    return kept
