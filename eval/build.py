#!/usr/bin/env python3
"""Build the public evaluation set from eval/corpus.py: four long PDFs in eval/docs/ and the
questions with page-level truths in eval/questions.jsonl (the ground-truth format `evaluate`
reads: `question`, `truth` with [file.pdf#page=N] citations, extra fields kept).

    .venv/bin/python eval/build.py          # rewrite eval/docs/*.pdf and eval/questions.jsonl

Deterministic: fixed dates and a seeded generator, so a rebuild without changes is byte-identical.
Each section of a document spans three pages (figures table, how it works, good to know), each
page filled with the boilerplate real booklets repeat, so a question's words appear on many pages
and only one of them answers it.
"""

import datetime as dt
import json
import random
import sys
from pathlib import Path

from fpdf import FPDF

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus

ROOT = Path(__file__).resolve().parent
DOCS = ROOT / "docs"
FIXED_DATE = dt.datetime(2026, 1, 5, 9, 0, 0, tzinfo=dt.UTC)
PAGE_BOTTOM = 297 - 22  # mm: the footer's space is below this

BOILERPLATE = {
    "plan": [
        "This page describes {s} as it applies to members of the {doc}. Amounts are per member and "
        "per calendar year unless the table says otherwise, and they include any tax.",
        "Providers with a contract with Harbor Health bill us directly for {s}; you only pay the "
        "co-payment shown for your tier. Providers without a contract send the bill to you.",
        "The general conditions of the plan also apply to {s}. Where this guide and the general "
        "conditions differ, the general conditions prevail.",
        "Questions about {s}? The member service team is available on working days from 8:00 to "
        "20:00 by phone, chat in the app, or through the contact form on the website.",
        "Harbor Health may ask for a medical report to assess a claim for {s}. We treat medical "
        "information confidentially and only our medical advisers read it.",
        "Costs for {s} count towards the yearly deductible only where the law requires it; most "
        "benefits in this chapter are paid without the deductible.",
        "When two benefits could pay for the same treatment, we pay once, from the benefit that is "
        "most favourable to you. This benefit never pays twice for one bill.",
    ],
    "handbook": [
        "This chapter on {s} applies to all employees of Quillstone with a permanent or fixed-term "
        "contract. Interns and contractors follow the terms of their own agreement.",
        "Your lead is the first person to ask about {s}. HR answers questions that your lead "
        "cannot, through the HR portal or at hr@quillstone.example.",
        "Where a collective agreement or the law gives you more than this handbook says about {s}, "
        "the more favourable rule applies.",
        "Quillstone reviews the rules on {s} every year with the works council. Changes are "
        "announced on the intranet at least one month before they take effect.",
        "Part-time employees receive the entitlements on {s} in proportion to their contract hours "
        "unless this chapter says otherwise.",
        "Keep records related to {s} for at least one year; HR may ask for them during an audit.",
    ],
    "manual": [
        "This chapter about {s} applies to the Tern T4 with firmware 3.0 or later. Screens of "
        "older firmware versions may look slightly different.",
        "Read the safety instructions at the front of this manual before working on {s}. When in "
        "doubt, ask a qualified heating engineer.",
        "Tern support helps with {s} on working days from 9:00 to 17:00 through the Tern Home "
        "app or at support.tern.example.",
        "Pictures in this chapter on {s} are for illustration; your home and heating system may "
        "differ.",
        "Settings changed on the device itself and in the Tern Home app are the same settings; the "
        "last change wins, whichever place it was made in.",
        "The T4 keeps its settings for {s} when the power fails, and resumes the schedule when the "
        "power returns.",
    ],
}

DOCUMENTS = [
    {
        "file": "harbor-health-essential-plan.pdf",
        "title": "Harbor Health Essential Plan - Member Guide 2026",
        "kind": "plan",
        "tier": "essential",
        "sections": corpus.PLAN_SECTIONS,
        "org": "Harbor Health",
    },
    {
        "file": "harbor-health-premier-plan.pdf",
        "title": "Harbor Health Premier Plan - Member Guide 2026",
        "kind": "plan",
        "tier": "premier",
        "sections": corpus.PLAN_SECTIONS,
        "org": "Harbor Health",
    },
    {
        "file": "quillstone-employee-handbook.pdf",
        "title": "Quillstone Employee Handbook",
        "kind": "handbook",
        "sections": corpus.HANDBOOK_SECTIONS,
        "org": "Quillstone BV",
    },
    {
        "file": "tern-t4-thermostat-manual.pdf",
        "title": "Tern T4 Smart Thermostat - User Manual",
        "kind": "manual",
        "sections": corpus.MANUAL_SECTIONS,
        "org": "Tern Devices",
    },
]
PAGE_OF = {"table": 0, "details": 1, "notes": 2}
FRONT_PAGES = 2  # cover with contents, and an introduction


def value(v, tier):
    return v[tier] if isinstance(v, dict) else v


class Booklet(FPDF):
    footer_text = ""

    def footer(self):
        self.set_y(-15)
        self.set_font("Helvetica", "", 8)
        self.cell(0, 8, f"{self.footer_text} - page {self.page_no()}", align="C")


def _paragraph(pdf, text, size=10.5, style=""):
    pdf.set_font("Helvetica", style, size)
    pdf.multi_cell(0, 5.5, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)


def _fill(pdf, doc, subject, rng, number):
    """Boilerplate paragraphs until the page is full, as booklets have."""
    pool = list(BOILERPLATE[doc["kind"]])
    rng.shuffle(pool)
    for template in pool:
        text = template.format(s=subject.lower(), doc=doc["title"].split(" - ")[0])
        pdf.set_font("Helvetica", "", 10.5)
        height = pdf.multi_cell(0, 5.5, text, dry_run=True, output="HEIGHT")
        if pdf.get_y() + height + 2 > PAGE_BOTTOM:
            break
        _paragraph(pdf, text)
    if pdf.page_no() != number:
        raise SystemExit(f"{doc['file']}: page {number} overflowed")


def section_start(index: int) -> int:
    return FRONT_PAGES + 1 + 3 * index


def build_pdf(doc: dict, rng: random.Random) -> bytes:
    tier = doc.get("tier")
    pdf = Booklet(format="A4")
    pdf.footer_text = doc["title"]
    pdf.set_margins(20, 20, 20)
    pdf.set_auto_page_break(True, margin=20)
    pdf.set_title(doc["title"])
    pdf.set_author(doc["org"])
    pdf.set_creator("eval/build.py (fpdf2)")
    pdf.set_creation_date(FIXED_DATE)
    # Cover and contents.
    pdf.add_page()
    _paragraph(pdf, doc["title"], 20, "B")
    _paragraph(pdf, "Contents", 13, "B")
    for i, section in enumerate(doc["sections"]):
        _paragraph(pdf, f"{i + 1}. {section['title']} ... page {section_start(i)}")
    pdf.add_page()
    _paragraph(pdf, "About this guide", 13, "B")
    _fill(pdf, doc, "this guide", rng, 2)
    for i, section in enumerate(doc["sections"]):
        number = section_start(i)
        heading = f"{i + 1}. {section['title']}"
        pdf.add_page()
        _paragraph(pdf, heading, 14, "B")
        _paragraph(pdf, section["intro"])
        pdf.set_font("Helvetica", "", 10)
        with pdf.table(col_widths=(60, 110), text_align="LEFT") as table:
            title_row = table.row()
            title_row.cell("Benefit" if tier else "Item")
            title_row.cell(f"{tier.capitalize()} tier" if tier else "Value")
            for label, v in section["table"]:
                row = table.row()
                row.cell(label)
                row.cell(value(v, tier))
        pdf.ln(3)
        _fill(pdf, doc, section["title"], rng, number)
        pdf.add_page()
        _paragraph(pdf, f"{heading}: how it works", 12, "B")
        _paragraph(pdf, section["details"])
        _fill(pdf, doc, section["title"], rng, number + 1)
        pdf.add_page()
        _paragraph(pdf, f"{heading}: good to know", 12, "B")
        _paragraph(pdf, section["notes"])
        _fill(pdf, doc, section["title"], rng, number + 2)
    pdf.add_page()
    _paragraph(pdf, "Contacts and definitions", 13, "B")
    _fill(pdf, doc, "the terms used in this guide", rng, pdf.page_no())
    return bytes(pdf.output())


def _typo(text: str, rng: random.Random) -> str:
    words = text.split()
    long = [i for i, w in enumerate(words) if len(w) >= 6 and w.isalpha()]
    if not long:
        return text
    i = rng.choice(long)
    w = words[i]
    j = rng.randrange(1, len(w) - 2)
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :] if rng.random() < 0.5 else w[:j] + w[j + 1 :]
    return " ".join(words)


def _truth(doc: dict, section: dict, where: str, index: int) -> tuple[str, str]:
    tier = doc.get("tier")
    page = section_start(index) + PAGE_OF[where]
    if where == "table":
        text = "; ".join(f"{label}: {value(v, tier)}" for label, v in section["table"])
    else:
        text = section[where]
    return text, f"[{doc['file']}#page={page}]"


def questions(rng: random.Random) -> list[dict]:
    out = []
    plans = {d["tier"]: d for d in DOCUMENTS if d["kind"] == "plan"}
    plan_names = {
        "essential": ["essential", "the Essential plan", "Essential tier", "harbor essential"],
        "premier": ["premier", "the premier plan", "Premier tier", "harbor premier"],
    }
    for doc in DOCUMENTS:
        if doc["kind"] == "plan" and doc["tier"] == "premier":
            continue  # the plan questions are written once, for one tier or for both
        for index, section in enumerate(doc["sections"]):
            for text, where in section["questions"]:
                wheres = where if isinstance(where, tuple) else (where,)
                kinds = ["two-pages"] if len(wheres) > 1 else []
                targets = [doc]
                if doc["kind"] == "plan":
                    if "{plan}" in text:
                        tier = rng.choice(["essential", "premier"])
                        name = rng.choice(plan_names[tier])
                        text = text.replace("the {plan} plan", name).replace("{plan}", name)
                        targets = [plans[tier]]
                        kinds.append("names-document")
                    else:
                        targets = list(plans.values())  # same words in both twins
                        kinds.append("twins")
                elif rng.random() < 0.2:
                    name = {"handbook": "employee handbook", "manual": "t4 manual"}[doc["kind"]]
                    text = f"{text} ({name})" if rng.random() < 0.5 else f"{name}: {text}"
                    kinds.append("names-document")
                if rng.random() < 0.2:
                    text = _typo(text, rng)
                    kinds.append("typo")
                answers, citations = [], []
                for target in targets:
                    for w in wheres:
                        answer, citation = _truth(target, section, w, index)
                        if answer not in answers:
                            answers.append(answer)
                        citations.append(citation)
                truth = " ".join(answers) + " " + "".join(citations)
                out.append({"question": text, "truth": truth, "kind": kinds or ["plain"]})
    by_file = {d["file"]: d for d in DOCUMENTS}
    for text, file, title, where in corpus.VAGUE:
        doc = by_file[file]
        index = next(i for i, s in enumerate(doc["sections"]) if s["title"] == title)
        answer, citation = _truth(doc, doc["sections"][index], where, index)
        out.append({"question": text, "truth": f"{answer} {citation}", "kind": ["vague"]})
    for text in corpus.UNANSWERABLE:
        out.append({"question": text, "truth": "", "kind": ["unanswerable"]})
    return out


def sample_kb_questions() -> list[dict]:
    """sample_kb/QUESTIONS.json in the same format, its truths citing the answering document."""
    out = []
    for q in json.loads((ROOT.parent / "sample_kb/QUESTIONS.json").read_text()):
        name = Path(q["source"]).name + (f"#page={q['page']}" if q["page"] else "")
        truth = "; ".join(q["answer_contains"]) + f" [{name}]"
        kind = ["restricted"] if q["restricted_to"] else ["public"]
        out.append({"question": q["question"], "truth": truth, "kind": kind})
    return out


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")


def main() -> int:
    DOCS.mkdir(exist_ok=True)
    pages = 0
    for doc in DOCUMENTS:
        # One generator per document: the twins lay out alike, page for page.
        data = build_pdf(doc, random.Random(doc["kind"]))
        (DOCS / doc["file"]).write_bytes(data)
        pages += data.count(b"/Type /Page\n") or data.count(b"/Type /Page")
    qs = questions(random.Random(16))
    _write_jsonl(ROOT / "questions.jsonl", qs)
    _write_jsonl(ROOT / "sample_kb.jsonl", sample_kb_questions())
    print(f"{len(DOCUMENTS)} documents, {len(qs)} questions", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
