"""One evaluation run: every question through the target, at most `concurrency` at once, each
answer scored (and rated by the judge when there is one), in the order of the file."""

import asyncio
from dataclasses import dataclass

from tqdm import tqdm

from chat.evaluation import metrics
from chat.evaluation.citations import bracketed
from chat.evaluation.targets import Reply, passages_text, retrieved_citations


@dataclass(frozen=True)
class Options:
    top: int | None = None
    mode: str | None = None
    collection: str | None = None
    concurrency: int = 4


def request_body(question: str, options: Options) -> dict:
    """The `POST /chat` body: the question alone, a new conversation, the run's overrides."""
    overrides = {
        key: value
        for key, value in (
            ("top", options.top),
            ("retrieval_mode", options.mode),
            ("collection", options.collection),
        )
        if value is not None
    }
    return {
        "messages": [{"role": "user", "content": question}],
        "context": {"overrides": overrides},
        "session_state": None,
    }


def result_row(item: dict, reply: Reply) -> dict:
    row = dict(item)
    row.update(
        retrieved=retrieved_citations(reply.context),
        answer=reply.answer,
        cited=bracketed(reply.answer),
        latency_s=round(reply.latency_s, 4),
        usage=reply.context.get("usage") or {},
        timings=reply.context.get("timings") or {},
        error=reply.error,
        stopped=reply.stopped,
    )
    if not reply.error:
        row["metrics"] = metrics.score_row(row)
    return row


async def run(questions: list[dict], target, options: Options, judge=None, progress=True):
    """(rows, served_by) of the run."""
    gate = asyncio.Semaphore(options.concurrency)
    about: dict = {}

    async def one(item: dict) -> dict:
        async with gate:
            reply = await target.ask(request_body(item["question"], options))
            row = result_row(item, reply)
            if not about:
                about.update(served_by(reply.context))
            if judge is not None and not reply.error:
                row["judge"] = await judge.rate(
                    item["question"], reply.answer, passages_text(reply.context)
                )
            return row

    tasks = [asyncio.ensure_future(one(item)) for item in questions]
    try:
        with tqdm(total=len(tasks), desc="questions", unit="q", disable=not progress) as bar:
            for done in asyncio.as_completed(tasks):
                await done
                bar.update(1)
    finally:
        for task in tasks:
            task.cancel()
    return [task.result() for task in tasks], about


def served_by(context: dict) -> dict:
    """What answered, as the thought steps name it: answerer, search backend, mode and top."""
    about = {}
    for thought in context.get("thoughts") or []:
        if not isinstance(thought, dict):
            continue
        raw_props = thought.get("props")
        props = raw_props if isinstance(raw_props, dict) else {}
        if thought.get("title") == "Answerer":
            about["answerer"] = thought.get("description")
        elif thought.get("title") == "Access filter" and "backend" in props:
            about["search_backend"] = props["backend"]
        elif thought.get("title") == "Search query":
            about.update(
                {k: props[k] for k in ("retrieval_mode", "top") if props.get(k) is not None}
            )
    return about
