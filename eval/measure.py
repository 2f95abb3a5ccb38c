"""Quick retrieval and answer measurement on the public sets, in process (the offline answerer,
the embedded index, top 5, public access as an anonymous visitor has it).

    RAGSITE_DATA_DIR=/tmp/eval-data .venv/bin/python eval/measure.py [eval|sample] [--reindex]

eval: eval/questions.jsonl over eval/docs/*.pdf; sample: sample_kb/QUESTIONS.json over seed_demo.
"""

import asyncio
import json
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsite.settings")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django

django.setup()

from django.core.management import call_command  # noqa: E402

from chat.llm.local import NOTHING_FOUND, LocalAnswerer  # noqa: E402
from knowledge import retrieval  # noqa: E402
from knowledge.models import Document  # noqa: E402
from knowledge.search import backend  # noqa: E402
from knowledge.search.base import ANONYMOUS, EVERYTHING, SearchQuery  # noqa: E402

ROOT = Path(__file__).resolve().parent
CITATION = re.compile(r"\[([^\]]+\.\w{3,4}(?:#page=\d+)?)\]")
TOP = 5


def _index(which: str, reindex: bool):
    call_command("migrate", verbosity=0)
    if reindex:
        Document.objects.all().delete()
    if not Document.objects.exists():
        if which == "eval":
            call_command("ingest", str(ROOT / "docs"), verbosity=0)
        else:
            call_command("seed_demo", verbosity=0)
    call_command("sync_index", "--rebuild", verbosity=0)


async def _ask(questions, access):
    answerer = LocalAnswerer()
    out = []
    async with backend() as index:
        for q in questions:
            hits = await retrieval.search(SearchQuery(text=q, access=access, top=TOP), index)
            out.append((hits, answerer.compose(q, hits)))
    return out


def main() -> int:
    which = sys.argv[1] if len(sys.argv) > 1 else "eval"
    _index(which, "--reindex" in sys.argv)
    if which == "eval":
        rows = [json.loads(line) for line in open(ROOT / "questions.jsonl")]
        results = asyncio.run(_ask([r["question"] for r in rows], ANONYMOUS))
        rec = {1: [], 3: [], 5: []}
        mrr, matched, anyc, refused, docrec = [], [], [], [], []
        by_kind: dict[str, list[float]] = {}
        for row, (hits, answer) in zip(rows, results, strict=True):
            truth = CITATION.findall(row["truth"])
            cited = set(CITATION.findall(answer))
            if not truth:
                refused.append(answer == NOTHING_FOUND)
                continue
            got = [h.citation for h in hits]
            for k in rec:
                rec[k].append(len(set(truth) & set(got[:k])) / len(set(truth)))
            ranks = [i for i, c in enumerate(got, 1) if c in truth]
            mrr.append(1 / ranks[0] if ranks else 0)
            docs = {t.split("#")[0] for t in truth}
            docrec.append(any(c.split("#")[0] in docs for c in got))
            matched.append(len(set(truth) & cited) / len(set(truth)))
            anyc.append(bool(cited))
            for kind in row["kind"]:
                by_kind.setdefault(kind, []).append((rec[1][-1], rec[5][-1]))
            if "-v" in sys.argv and rec[5][-1] < 1:
                print(row["question"], truth, got, file=sys.stderr)

        def avg(xs):
            return round(sum(xs) / len(xs), 3)

        print(
            json.dumps(
                {
                    "recall@1": avg(rec[1]),
                    "recall@3": avg(rec[3]),
                    "recall@5": avg(rec[5]),
                    "mrr": avg(mrr),
                    "doc_recall@5": avg(docrec),
                    "citations_matched": avg(matched),
                    "any_citation": avg(anyc),
                    "unanswerable_refused": f"{sum(refused)}/{len(refused)}",
                    "recall@1,5_by_kind": {
                        k: (avg([a for a, _ in v]), avg([b for _, b in v]), len(v))
                        for k, v in sorted(by_kind.items())
                    },
                }
            )
        )
    else:
        qs = json.loads((ROOT.parent / "sample_kb/QUESTIONS.json").read_text())
        results = asyncio.run(_ask([q["question"] for q in qs], EVERYTHING))

        def norm(t):
            return " ".join(t.split())

        found = answered = 0
        for q, (hits, answer) in zip(qs, results, strict=True):
            found += any(all(norm(a) in norm(h.text) for a in q["answer_contains"]) for h in hits)
            answered += all(norm(a) in norm(answer) for a in q["answer_contains"])
        print(json.dumps({"retrieved": f"{found}/{len(qs)}", "answered": f"{answered}/{len(qs)}"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
