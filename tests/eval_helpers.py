"""A tiny knowledge base for the evaluation tests: each page has words of its own."""

import json

from tests.files import pdf_bytes

PAGES = [
    "Welcome to the booklet. Members receive a welcome pack.",
    "Dental allowance: up to 300 euros per year for dental work.",
    "Hearing allowance: up to 500 euros per ear for hearing aids.",
    "Claims must be filed within ninety days.",
]
GUIDE = "# Parking\n\nParking permits cost twelve euros per month at the garage.\n"


def write_kb(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plan.pdf").write_bytes(pdf_bytes(PAGES, "Plan"))
    (folder / "guide.md").write_text(GUIDE)
    return folder


def write_jsonl(path, items):
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


def use_llm(settings, fake):
    settings.OPENAI_HOST = "compatible"
    settings.OPENAI_BASE_URL = fake.openai_base_url
    settings.OPENAI_API_KEY = fake.api_key
    settings.OPENAI_CHAT_MODEL = "llama3.1"
    settings.LLM_MAX_RETRIES = 0


def ingest_kb(folder):
    """The tiny knowledge base, ingested and indexed as staff would with the commands."""
    from django.core.management import call_command

    call_command("ingest", str(write_kb(folder)), verbosity=0)
    call_command("sync_index", verbosity=0)
