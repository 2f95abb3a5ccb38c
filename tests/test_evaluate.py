"""`manage.py evaluate`: every metric on a tiny knowledge base and question set, against values
worked out by hand below; the same run over HTTP against a real uvicorn; --compare; bad input.

The knowledge base gives each page words of its own, so what retrieval returns is plain:
  plan.pdf p1 welcome pack; p2 dental allowance; p3 hearing allowance; p4 claims; guide.md parking.
Answers come from the fake OpenAI server's echo answer, which cites every passage it was given,
so the answer metrics follow from retrieval alone.
"""

import json
import os
import subprocess
import sys

import pytest
from aiohttp import web
from django.core.management import CommandError, call_command

from chat.evaluation import metrics
from chat.evaluation.report import compare, load_summary
from tests.eval_helpers import ingest_kb, use_llm, write_jsonl, write_kb
from tests.fakes import reply
from tests.fakes.server import BackgroundServer
from tests.uvicorn_server import ROOT, launch, stop, wait_listening

QUESTIONS = [
    # retrieves p2 (both words), p3 ("allowance"); the truth is p3: page rank 2, near and
    # document rank 1
    {"question": "dental allowance", "truth": "300 euros [plan.pdf#page=3]", "kind": "typo"},
    # retrieves p4 only; the truth also cites the guide, never retrieved: half of it found
    {"question": "claims filed", "truth": "90 days [plan.pdf#page=4] [guide.md]", "kind": "typo"},
    # retrieves the guide only; the truth cites p1: nothing found at any level
    {"question": "parking permits", "truth": "12 euros [plan.pdf#page=1]", "kind": "plain"},
    # retrieves nothing; the truth cites nothing: left out of retrieval and citations_matched
    {"question": "sourdough baking", "truth": "I don't know.", "kind": "plain"},
    # retrieves p3 only, the truth's page
    {"question": "hearing aids", "truth": "500 euros [plan.pdf#page=3]", "kind": "plain"},
]
RETRIEVED = [
    ["plan.pdf#page=2", "plan.pdf#page=3"],
    ["plan.pdf#page=4"],
    ["guide.md"],
    [],
    ["plan.pdf#page=3"],
]
# Retrieval over questions 1, 2, 3 and 5 (question 4's truth cites nothing):
#   page:      recall@1 (0 + .5 + 0 + 1) / 4, recall@3.. (1 + .5 + 0 + 1) / 4,
#              MRR (.5 + 1 + 0 + 1) / 4
#   document:  recall@k (1 + .5 + 0 + 1) / 4, MRR (1 + 1 + 0 + 1) / 4
#   page ±1:   p2 is next to the truth's p3, so as document
EXPECTED_RETRIEVAL = {
    "questions": 4,
    "page": {"recall@1": 0.375, "recall@3": 0.625, "recall@5": 0.625, "recall@10": 0.625,
             "mrr": 0.625},
    "document": {"recall@1": 0.625, "recall@3": 0.625, "recall@5": 0.625, "recall@10": 0.625,
                 "mrr": 0.75},
    "near_page": {"recall@1": 0.625, "recall@3": 0.625, "recall@5": 0.625, "recall@10": 0.625,
                  "mrr": 0.75},
}  # fmt: skip
# Answers (the echo cites what was retrieved). The Azure samples' regex needs a 3-4 letter
# extension, so it does not see [guide.md]:
#   citations_matched: q1 {plan#3} of {plan#2, plan#3}: 1; q2 truth {plan#4}: 1; q3 0; q4 none;
#   q5 1  -> 3 / 4 = 0.75.  any_citation: q1, q2, q5 -> 3 / 5.  Citations per answer:
#   (2 + 1 + 1 + 0 + 1) / 5 = 1.
EXPECTED_CITED = [["plan.pdf#page=2", "plan.pdf#page=3"], ["plan.pdf#page=4"], ["guide.md"], [],
                  ["plan.pdf#page=3"]]  # fmt: skip


@pytest.fixture
def kb(transactional_db, tmp_path, settings):
    settings.CHAT_STREAM_DELAY_SECONDS = 0
    ingest_kb(tmp_path / "kb")


def evaluate(*args, **options):
    call_command("evaluate", *[str(a) for a in args], no_progress=True, **options)


def read_run(out):
    rows = [json.loads(line) for line in (out / "eval_results.jsonl").read_text().splitlines()]
    return rows, json.loads((out / "summary.json").read_text())


def test_every_metric_matches_the_hand_computed_values(kb, settings, fake_openai, tmp_path):
    use_llm(settings, fake_openai)
    qa = write_jsonl(tmp_path / "qa.jsonl", QUESTIONS)
    out = tmp_path / "run"
    evaluate(qa, out=out, mode="text", top=5, concurrency=2, by=["kind"])
    rows, summary = read_run(out)
    assert [r["question"] for r in rows] == [q["question"] for q in QUESTIONS]
    assert [r["kind"] for r in rows] == ["typo"] * 2 + ["plain"] * 3  # extra fields kept
    assert [r["retrieved"] for r in rows] == RETRIEVED
    assert [r["cited"] for r in rows] == EXPECTED_CITED
    assert summary["retrieval"] == EXPECTED_RETRIEVAL
    answers = summary["answers"]
    assert answers["citations_matched"] == {"rate": 0.75, "total": 3, "questions": 4}
    assert answers["any_citation"] == {"rate": 0.6, "total": 3}
    assert answers["citations_per_answer"] == 1.0
    assert [r["metrics"]["citations_matched"] for r in rows] == [1.0, 1.0, 0.0, None, 1.0]
    assert [r["metrics"]["any_citation"] for r in rows] == [True, True, False, False, True]
    assert rows[0]["metrics"]["retrieval"]["page"] == {
        "recall@1": 0.0, "recall@3": 1.0, "recall@5": 1.0, "recall@10": 1.0, "mrr": 0.5
    }  # fmt: skip
    assert summary["answered"] == 5 and summary["errors"] == 0
    # Tokens as the server reported them, summed.
    reported = [r["usage"]["total_tokens"] for r in rows]
    assert all(t > 0 for t in reported)
    assert summary["tokens"]["total_tokens"] == sum(reported)
    assert summary["tokens"]["per_answer"] == round(sum(reported) / 5, 4)
    assert summary["parameters"]["retrieval_mode"] == "text"
    assert summary["parameters"]["answerer"] == "compatible:llama3.1"
    # Per kind: typo = questions 1 and 2, plain = 3, 4 and 5 (4 left out of retrieval).
    typo, plain = summary["by"]["kind"]["typo"], summary["by"]["kind"]["plain"]
    assert (
        typo["retrieval"]["page"]["recall@5"] == 0.75 and typo["retrieval"]["page"]["mrr"] == 0.75
    )
    assert plain["retrieval"]["page"]["recall@5"] == 0.5 and plain["retrieval"]["questions"] == 2
    assert typo["answers"]["citations_matched"]["rate"] == 1.0
    assert plain["answers"]["citations_matched"]["rate"] == 0.5
    assert plain["answers"]["any_citation"]["rate"] == 0.3333
    table = (out / "summary.md").read_text()
    assert "| page | 0.38 | 0.62 | 0.62 | 0.62 | 0.62 |" in table
    assert "| plain | 3 | 0.50 | 0.50 | 0.50 | 0.50 | 0.50 | 0.33 |" in table
    assert "| citations_matched | 0.75 (4 questions) |" in table


def test_latency_percentiles_and_judge_ratings_are_summarised_by_hand():
    def row(latency, judged=None):
        return {
            "latency_s": latency,
            "usage": {},
            "metrics": {"retrieval": None, "citations_matched": None, "any_citation": False,
                        "citations": 0},
            "judge": judged,
        }  # fmt: skip

    rows = [row(1.0, {"groundedness": 5, "relevance": 2}), row(2.0), row(3.0),
            row(4.0, {"groundedness": 3, "relevance": None}), row(5.0)]  # fmt: skip
    rows.append({**row(9.0), "error": "HTTP 502: upstream down"})  # failed: left out
    summary = metrics.summarize(rows)
    # Inclusive percentiles of 1..5: p50 = 3, p95 at position 0.95 * 4 = 3.8 -> 4 + 0.8.
    assert summary["latency_s"] == {"p50": 3.0, "p95": 4.8, "mean": 3.0}
    assert summary["judge"]["groundedness"] == {"mean": 4.0, "pass_rate": 1.0, "rated": 2}
    assert summary["judge"]["relevance"] == {"mean": 2.0, "pass_rate": 0.0, "rated": 1}
    assert (summary["answered"], summary["errors"]) == (5, 1)


def test_citations_are_matched_as_the_azure_samples_match_them():
    # (name without extension, last #page) is what their regex compares: the extension is not
    # part of it, and a citation without a 3-4 letter extension is not one.
    assert metrics.citations_matched("x [a.docx#page=2]", "y [a.pdf#page=2]") == 1.0
    assert metrics.citations_matched("x [a.pdf]", "y [a.pdf#page=2] [b.pdf]") == 0.0
    assert metrics.citations_matched("[b.pdf] [a.pdf#page=2]", "[a.pdf#page=2] [b.pdf]") == 1.0
    assert metrics.citations_matched("[a.pdf#page=2]", "no citation") is None
    assert metrics.any_citation("see [notes.md]") is False
    assert metrics.any_citation("see [Leave policy] and [plan.html]") is True


def test_retrieval_levels_normalise_citations():
    truth = "[Plan.PDF #page=03] [handbook]"
    scores = metrics.retrieval_scores(["plan.pdf#page=4", "x.pdf", "Handbook"], truth)
    assert scores["page"]["recall@1"] == 0.0 and scores["page"]["recall@3"] == 0.5
    assert scores["page"]["mrr"] == pytest.approx(1 / 3)
    assert scores["near_page"]["recall@1"] == 0.5 and scores["near_page"]["mrr"] == 1.0
    assert scores["document"]["recall@3"] == 1.0
    assert metrics.retrieval_scores(["a.pdf"], "no citations here") is None


def test_slides_count_as_pages_and_sheets_as_their_workbook():
    # A deck cited without its slide is found by any of its slides; a slide by itself or one away.
    scores = metrics.retrieval_scores(["x.pdf", "Deck.pptx#slide=3"], "[deck.pptx]")
    assert scores["page"]["recall@1"] == 0.0 and scores["page"]["recall@3"] == 1.0
    scores = metrics.retrieval_scores(["deck.pptx#slide=4"], "[deck.pptx#slide=3]")
    assert scores["page"]["recall@1"] == 0.0 and scores["near_page"]["recall@1"] == 1.0
    # A sheet has no page number: the workbook is what is compared.
    scores = metrics.retrieval_scores(["book.xlsx#sheet=Budget 2025"], "[Book.xlsx]")
    assert scores["page"]["recall@1"] == 1.0


def test_judge_rates_through_the_configured_client(kb, settings, fake_openai, tmp_path):
    use_llm(settings, fake_openai)
    qa = write_jsonl(tmp_path / "qa.jsonl", [QUESTIONS[4], QUESTIONS[0]])
    # One question at a time: its answer, then the two ratings.
    fake_openai.enqueue(
        reply("Up to 500 euros [plan.pdf#page=3]."),
        reply(
            "<S0>Let's think step by step: it is in the context.</S0><S1>Supported.</S1><S2>5</S2>"
        ),
        reply('{"explanation": "Answers the question with the amount.", "score": 4}'),
        reply("Dental: 300 euros [plan.pdf#page=2]."),
        reply("<S0>...</S0><S1>Adds a claim the context lacks.</S1><S2>3</S2>"),
        reply("I cannot rate this."),
    )
    out = tmp_path / "judged"
    evaluate(qa, out=out, mode="text", concurrency=1, judge=True, judge_model="judge-model")
    rows, summary = read_run(out)
    assert [(r["judge"]["groundedness"], r["judge"]["relevance"]) for r in rows] == [
        (5, 4),
        (3, None),
    ]
    assert summary["judge"]["groundedness"] == {"mean": 4.0, "pass_rate": 1.0, "rated": 2}
    assert summary["judge"]["relevance"] == {"mean": 4.0, "pass_rate": 1.0, "rated": 1}
    assert summary["parameters"]["judge"] == "judge-model"
    judge_requests = [r for r in fake_openai.chat_requests if r.json["model"] == "judge-model"]
    assert len(judge_requests) == 4
    grounded, relevant = (r.json["messages"][0]["content"] for r in judge_requests[:2])
    assert "CONTEXT: plan.pdf#page=3: Hearing allowance" in grounded
    assert "RESPONSE: Up to 500 euros [plan.pdf#page=3]." in grounded
    assert "QUERY: hearing aids" in relevant and "Groundedness" not in relevant


def test_judge_without_an_llm_is_a_clear_error(tmp_path):
    qa = write_jsonl(tmp_path / "qa.jsonl", QUESTIONS[:1])
    with pytest.raises(CommandError, match="--judge needs an LLM"):
        evaluate(qa, out=tmp_path / "out", judge=True)


@pytest.mark.parametrize(
    "content, message",
    [
        (
            '{"question": "a", "truth": "b"}\n{"question": "c", "truth": \n',
            "line 2: not valid JSON",
        ),
        ('{"question": "a", "truth": "b"}\n\n{"question": "c"}\n', "line 3: missing field 'truth'"),
        ('{"truth": "b"}\n', "line 1: missing field 'question'"),
        ('["question", "truth"]\n', "line 1: expected an object"),
        ('{"question": 5, "truth": "b"}\n', "line 1: 'question' must be a string"),
        ('{"question": "  ", "truth": "b"}\n', "line 1: 'question' is empty"),
        ('{"question": "a", "truth": "b", "answer": "c"}\n', "line 1: 'answer': names the results"),
        ("", "has no questions"),
        ("\n  \n", "has no questions"),
    ],
)
def test_bad_ground_truth_is_a_command_error_naming_the_line(tmp_path, content, message):
    qa = tmp_path / "qa.jsonl"
    qa.write_text(content)
    with pytest.raises(CommandError, match=message):
        evaluate(qa, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_bytes_and_missing_files_are_command_errors(tmp_path):
    qa = tmp_path / "qa.jsonl"
    qa.write_bytes(b'{"question": "a", "truth": "b"}\n{"question": "\xff", "truth": "b"}\n')
    with pytest.raises(CommandError, match="line 2: not UTF-8"):
        evaluate(qa)
    with pytest.raises(CommandError, match="Cannot read"):
        evaluate(tmp_path / "nowhere.jsonl")
    with pytest.raises(CommandError, match="--top must be from 1 to"):
        evaluate(qa, top=0)
    (tmp_path / "a-file").write_text("")
    good = write_jsonl(tmp_path / "good.jsonl", [{"question": "a", "truth": "b"}])
    with pytest.raises(CommandError, match="Cannot write to"):
        evaluate(good, out=tmp_path / "a-file" / "run")
    with pytest.raises(CommandError, match="Cannot read"):
        evaluate(compare=[str(tmp_path / "a"), str(tmp_path / "b")])


def test_compare_prints_each_metric_and_its_delta(tmp_path, capsys):
    base = {"questions": 2, "retrieval": {"page": {"recall@5": 0.5, "mrr": 0.25}},
            "answers": {"any_citation": {"rate": 0.5}}, "parameters": {"top": 5}}  # fmt: skip
    better = {"questions": 2, "retrieval": {"page": {"recall@5": 0.75, "mrr": None}},
              "answers": {"any_citation": {"rate": 1.0}}, "parameters": {"top": 3}}  # fmt: skip
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "summary.json").write_text(json.dumps(base))
    (tmp_path / "b.json").write_text(json.dumps(better))
    evaluate(compare=[str(tmp_path / "a"), str(tmp_path / "b.json")])
    out = capsys.readouterr().out
    assert "| retrieval.page.recall@5 | 0.5 | 0.75 | +0.25 |" in out
    assert "| retrieval.page.mrr | 0.25 | – | – |" in out
    assert "| answers.any_citation.rate | 0.5 | 1 | +0.5 |" in out
    assert "| questions | 2 | 2 | +0 |" in out
    assert "top" not in out
    assert load_summary(tmp_path / "a") == base
    assert compare(base, base).count("+0 |") == 4


@pytest.mark.slow
@pytest.mark.own_configuration
def test_over_http_against_a_real_uvicorn_gives_the_same_retrieval(tmp_path):
    """The deployed form: a real server on the embedded default (offline answerer), asked over
    POST /chat; retrieval is scored as in process."""
    data = tmp_path / "server"
    settings_prefixes = ("DJANGO_", "RAGSITE_", "DATABASE_", "REDIS_", "CHAT_", "SEARCH_")
    # EMBEDDINGS (the suite's none, tests/suite_env.py) is kept: retrieval is text, as in process.
    settings_prefixes += ("OPENAI_", "AZURE_", "LLM_", "EMBEDDING_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(settings_prefixes)}
    env.update(
        RAGSITE_DATA_DIR=str(data),
        OPENAI_HOST="local",
        CHAT_STREAM_DELAY_SECONDS="0",
        CHAT_RATE_LIMIT="off",
        CHAT_RATE_LIMIT_PER_IP="off",
        PYTHONUNBUFFERED="1",
    )
    kb = write_kb(tmp_path / "kb")
    for command in (["migrate"], ["ingest", str(kb)], ["sync_index"]):
        subprocess.run([sys.executable, "manage.py", *command, "-v", "0"], cwd=ROOT, env=env,
                       check=True)  # fmt: skip
    process, port = launch(env, tmp_path / "uvicorn.log")
    try:
        wait_listening(process, port, tmp_path / "uvicorn.log")
        qa = write_jsonl(tmp_path / "qa.jsonl", QUESTIONS)
        out = tmp_path / "http"
        evaluate(qa, out=out, url=f"http://127.0.0.1:{port}", top=5, concurrency=3)
    finally:
        stop(process)
    rows, summary = read_run(out)
    assert [r["retrieved"] for r in rows] == RETRIEVED
    assert summary["retrieval"] == EXPECTED_RETRIEVAL
    assert summary["parameters"]["target"] == f"http://127.0.0.1:{port}"
    assert summary["parameters"]["answerer"] == "local"
    assert summary["answered"] == 5
    # The offline answerer cites what it quotes; every citation it makes was retrieved.
    for row in rows:
        assert set(row["cited"]) <= set(row["retrieved"])
        assert row["latency_s"] > 0 and row["timings"]["total_ms"] > 0


class ScriptedChat(BackgroundServer):
    """A `POST /chat` that answers each question as scripted: a 429 first, then its reply."""

    def __init__(self):
        super().__init__()
        self.asked: list[str] = []

    def build_app(self):
        async def chat(request):
            question = (await request.json())["messages"][-1]["content"]
            self.asked.append(question)
            if question == "busy" and self.asked.count("busy") == 1:
                slow_down = {"error": "Slow down."}
                return web.json_response(slow_down, status=429, headers={"Retry-After": "0"})
            if question == "broken":
                return web.Response(status=500, text="<html>Server Error</html>")
            if question == "refused":
                return web.json_response({"error": "There is no collection 'x'."}, status=400)
            context = {"data_points": {"text": ["plan.pdf#page=2: Dental allowance."]}}
            return web.json_response(
                {"output_text": "300 euros [plan.pdf#page=2].", "context": context}
            )

        app = web.Application()
        app.router.add_post("/chat", chat)
        return app


def test_over_http_a_429_is_retried_and_failures_are_recorded(tmp_path):
    truth = "300 euros [plan.pdf#page=2]"
    questions = [{"question": q, "truth": truth} for q in ("busy", "broken", "refused")]
    qa = write_jsonl(tmp_path / "qa.jsonl", questions)
    with ScriptedChat() as server:
        evaluate(qa, out=tmp_path / "out", url=server.base_url + "/chat", concurrency=1)
        assert server.asked == ["busy", "busy", "broken", "refused"]
    rows, summary = read_run(tmp_path / "out")
    # Passages from a server that sends only data_points.text are read from its prefixes.
    assert rows[0]["retrieved"] == ["plan.pdf#page=2"] and rows[0]["error"] is None
    assert rows[1]["error"] == "HTTP 500: the response is not a JSON object"
    assert rows[2]["error"] == "HTTP 400: There is no collection 'x'."
    assert (summary["answered"], summary["errors"]) == (1, 2)
    assert summary["retrieval"]["page"]["recall@1"] == 1.0


def test_a_run_where_every_question_fails_is_a_command_error(tmp_path):
    qa = write_jsonl(tmp_path / "qa.jsonl", [{"question": "refused", "truth": ""}])
    with ScriptedChat() as server, pytest.raises(CommandError, match="Every question failed"):
        evaluate(qa, out=tmp_path / "out", url=server.base_url)
    assert (tmp_path / "out" / "eval_results.jsonl").exists()
