"""Ground truth for a team's own knowledge base: sample passages (seeded, so a set can be made
again), ask the configured model for questions a reader would ask and their answers from the
passage, and cite the passage in each truth. The result is the JSONL evaluate reads; read it
through before relying on it: a model's questions tend to echo the passage's words."""

import asyncio
import random
import re

import openai
import orjson
from tqdm import tqdm

from chat.llm.errors import map_error
from core.clients import OpenAIClient, chat_model
from knowledge.models import Chunk

MIN_TOKENS = 10  # shorter passages (headings, page numbers) make poor questions
PROMPT = """\
Below is a passage from a company knowledge base. Write {count} question(s) that an employee \
might type into the knowledge base's chat, which the passage answers, and the answer to each \
taken from the passage alone. Ask as people do: in your own words rather than the passage's, \
short, some vague. Reply with a JSON object only: \
{{"pairs": [{{"question": "...", "answer": "..."}}]}}

Passage from {citation}:
{text}"""
_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def sample_passages(count: int, seed: int, collection=None, public_only=False) -> list[dict]:
    """`count` published passages chosen by `seed`, as {"citation", "text"}."""
    chunks = Chunk.objects.filter(document__published=True, token_count__gte=MIN_TOKENS)
    if collection:
        chunks = chunks.filter(document__collection__slug=collection)
    if public_only:
        chunks = chunks.filter(document__groups__isnull=True)
    ids = sorted(chunks.values_list("pk", flat=True).distinct())
    chosen = random.Random(seed).sample(ids, min(count, len(ids)))
    found = Chunk.objects.select_related("document").in_bulk(chosen)
    return [{"citation": found[pk].citation, "text": found[pk].text} for pk in chosen]


def parse_pairs(text: str) -> list[tuple[str, str]]:
    match = _OBJECT.search(text or "")
    try:
        data = orjson.loads(match[0]) if match else None
    except orjson.JSONDecodeError:
        return []
    pairs = data.get("pairs") if isinstance(data, dict) else None
    return [
        (p["question"].strip(), p["answer"].strip())
        for p in pairs or []
        if isinstance(p, dict)
        and isinstance(p.get("question"), str)
        and isinstance(p.get("answer"), str)
        and p["question"].strip()
        and p["answer"].strip()
    ]


def truth_line(question: str, answer: str, citation: str) -> dict:
    cited = f"[{citation}]"
    truth = answer if cited in answer else f"{answer} {cited}"
    return {"question": question, "truth": truth, "source": citation}


async def generate(passages, per_passage: int, concurrency: int, model=None, progress=True):
    """(lines, failures): the ground-truth lines, and a note for each passage that gave none."""
    client = OpenAIClient()
    model = model or chat_model()
    gate = asyncio.Semaphore(concurrency)

    async def one(passage):
        prompt = PROMPT.format(count=per_passage, **passage)
        async with gate:
            try:
                response = await client.client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": prompt}], temperature=0.7
                )
            except openai.OpenAIError as exc:
                return [], f"{passage['citation']}: {map_error(exc).message}"
        text = response.choices[0].message.content if response.choices else ""
        pairs = parse_pairs(text or "")[:per_passage]
        if not pairs:
            return [], f"{passage['citation']}: the model's reply held no question/answer pairs"
        return [truth_line(q, a, passage["citation"]) for q, a in pairs], None

    try:
        tasks = [asyncio.ensure_future(one(p)) for p in passages]
        with tqdm(total=len(tasks), desc="passages", disable=not progress) as bar:
            for done in asyncio.as_completed(tasks):
                await done
                bar.update(1)
        results = [task.result() for task in tasks]
    finally:
        await client.close()
    lines = [line for made, _ in results for line in made]
    return lines, [note for _, note in results if note]
