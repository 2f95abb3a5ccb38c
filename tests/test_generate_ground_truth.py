"""`manage.py generate_ground_truth`: seeded passages, the configured model's questions about
them (the real openai SDK over HTTP to the fake upstream), truths that cite the passage, and a
file evaluate reads."""

import json

import pytest
from django.core.management import CommandError, call_command

from chat.evaluation.ground_truth import load
from tests.eval_helpers import GUIDE, PAGES, ingest_kb, use_llm
from tests.fakes import reply

PASSAGES = {f"plan.pdf#page={n}": text for n, text in enumerate(PAGES, 1)}
PASSAGES["guide.md"] = GUIDE
PAIRS = '{"pairs": [{"question": "how much do i get?", "answer": "The amount it states."}]}'


@pytest.fixture
def kb(transactional_db, tmp_path):
    ingest_kb(tmp_path / "kb")


def generate(path, **options):
    call_command("generate_ground_truth", str(path), no_progress=True, **options)
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_questions_cite_the_sampled_passages_and_the_seed_repeats_them(
    kb, settings, fake_openai, tmp_path
):
    use_llm(settings, fake_openai)
    fake_openai.set_answer(PAIRS)
    lines = generate(tmp_path / "gt.jsonl", count=3, seed=7)
    assert len(lines) == 3
    sources = [line["source"] for line in lines]
    assert len(set(sources)) == 3 and set(sources) <= set(PASSAGES)
    for line in lines:
        assert line["question"] == "how much do i get?"
        assert line["truth"] == f"The amount it states. [{line['source']}]"
    # Each prompt carried its passage and named it.
    prompts = [r.json["messages"][0]["content"] for r in fake_openai.chat_requests]
    for source in sources:
        assert any(f"Passage from {source}:" in p for p in prompts)
    # Same seed, same passages; and evaluate reads the file as it is.
    assert [line["source"] for line in generate(tmp_path / "again.jsonl", count=3, seed=7)] == (
        sources
    )
    assert [q["question"] for q in load(tmp_path / "gt.jsonl")] == ["how much do i get?"] * 3


def test_a_passage_whose_reply_is_unusable_is_skipped(kb, settings, fake_openai, tmp_path):
    use_llm(settings, fake_openai)
    fake_openai.enqueue(reply("Sorry, no."), reply(PAIRS.replace("how much", "what")))
    lines = generate(tmp_path / "gt.jsonl", count=2, concurrency=1)
    assert [line["question"] for line in lines] == ["what do i get?"]
    fake_openai.set_answer("not JSON at all")
    with pytest.raises(CommandError, match="no usable question/answer pairs"):
        generate(tmp_path / "none.jsonl", count=2)
    assert not (tmp_path / "none.jsonl").exists()


def test_without_an_llm_or_passages_it_says_why(transactional_db, settings, fake_openai, tmp_path):
    with pytest.raises(CommandError, match="needs an LLM: set OPENAI_HOST"):
        generate(tmp_path / "gt.jsonl")
    use_llm(settings, fake_openai)
    with pytest.raises(CommandError, match="No passages to ask about"):
        generate(tmp_path / "gt.jsonl")
    assert not fake_openai.chat_requests
