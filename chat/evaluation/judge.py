"""An LLM rates each answer 1-5 for groundedness and relevance, on the rubric of the
azure-ai-evaluation package's GroundednessEvaluator (groundedness_without_query.prompty) and
RelevanceEvaluator (relevance.prompty), sent through the configured OpenAI client. Their levels and
output forms are kept (groundedness answers in <S0>/<S1>/<S2> tags, relevance as a JSON object);
a reply without a score from 1 to 5 is recorded as unrated, not guessed.
"""

import re

import openai
import orjson

from chat.llm.errors import map_error
from core.clients import OpenAIClient, chat_model

GROUNDEDNESS = """\
You judge how well a RESPONSE from an intelligent system is grounded in the CONTEXT it was given.

Groundedness: how faithfully the response keeps to the information in the CONTEXT, with every \
statement supported by it, nothing unsupported added, and no critical detail left out.

Ratings:
1 - Completely ungrounded: the response is unrelated to the CONTEXT and brings in topics or \
information that have nothing to do with it.
2 - Contradictory: the response contradicts or misrepresents what the CONTEXT says.
3 - Accurate with unsupported additions: the response carries information from the CONTEXT \
correctly but adds details, opinions or explanations the CONTEXT does not support.
4 - Incomplete: the response uses the CONTEXT but leaves out details essential to understanding \
its main point.
5 - Fully grounded and complete: the response rests entirely on the CONTEXT and conveys all \
essential information accurately, adding nothing unsupported and omitting nothing critical.

CONTEXT: {context}
RESPONSE: {response}

Think step by step, explain briefly, then give an integer score from 1 to 5 by the levels above. \
Answer between the tags: <S0>your chain of thought</S0>, <S1>your explanation</S1>, \
<S2>your score</S2>."""

RELEVANCE = """\
You judge how relevant a RESPONSE is to the user's QUERY.

Scores:
1 - Irrelevant: the response is unrelated to the question and does not try to address it.
2 - Related but unhelpful: the response touches the topic but gives no meaningful, specific or \
useful information; vague phrases, non-answers and failure messages belong here.
3 - Partially relevant: the response addresses the query with relevant information but leaves out \
essential parts; on topic, yet not enough to satisfy the request.
4 - Fully relevant: the response answers the question with accurate and sufficient information \
covering every essential aspect; very small omissions are acceptable.
5 - Comprehensive, with insight: the response answers fully and accurately and adds meaningful \
elaboration or context that shows why the information matters or how it is useful.

QUERY: {query}
RESPONSE: {response}

Read both, compare the response against the scores, and reply with a JSON object only:
{{"explanation": "<15-60 words>", "score": <1-5>}}"""

_TAGGED = re.compile(r"<S2>\s*(\d+)", re.IGNORECASE)
_JSON = re.compile(r"\{.*\}", re.DOTALL)


def parse_score(text: str) -> int | None:
    """The 1-5 score in a judge's reply: the <S2> tag, or a JSON object's "score"."""
    text = text or ""
    score = None
    if match := _TAGGED.search(text):
        score = int(match[1])
    elif match := _JSON.search(text):
        try:
            data = orjson.loads(match[0])
        except orjson.JSONDecodeError:
            data = None
        value = data.get("score") if isinstance(data, dict) else None
        if isinstance(value, int | float | str) and str(value).strip().isdigit():
            score = int(str(value).strip())
    return score if score is not None and 1 <= score <= 5 else None


class Judge:
    def __init__(self, model: str | None = None):
        self._client = OpenAIClient()
        self.model = model or chat_model()

    async def rate(self, question: str, answer: str, context: str) -> dict:
        groundedness = await self._ask(
            GROUNDEDNESS.format(context=context or "(no passages)", response=answer)
        )
        relevance = await self._ask(RELEVANCE.format(query=question, response=answer))
        return {
            "groundedness": parse_score(groundedness),
            "relevance": parse_score(relevance),
            "groundedness_reply": groundedness,
            "relevance_reply": relevance,
        }

    async def _ask(self, prompt: str) -> str:
        try:
            response = await self._client.client.chat.completions.create(
                model=self.model,
                messages=[{"role": "user", "content": prompt}],
                temperature=0,
                max_tokens=800,
            )
        except openai.OpenAIError as exc:
            return f"(the judge failed: {map_error(exc).message})"
        return (response.choices[0].message.content or "") if response.choices else ""

    async def close(self) -> None:
        await self._client.close()
