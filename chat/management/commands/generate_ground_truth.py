import asyncio
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from chat.evaluation.ground_truth import dump_line


class Command(BaseCommand):
    help = (
        "Write a ground-truth JSONL for evaluate from this knowledge base: sample passages "
        "(seeded) and ask the configured LLM for questions they answer, each truth citing its "
        "passage. Needs an LLM (OPENAI_HOST azure, openai or compatible)."
    )

    def add_arguments(self, parser):
        parser.add_argument("output", help="The JSONL file to write.")
        parser.add_argument("--count", type=int, default=20, help="Passages to sample.")
        parser.add_argument("--per-passage", type=int, default=1, help="Questions per passage.")
        parser.add_argument("--seed", type=int, default=0, help="The sample's seed.")
        parser.add_argument("--collection", help="Only this collection (slug).")
        parser.add_argument(
            "--public-only", action="store_true", help="Only documents everyone may read."
        )
        parser.add_argument("--model", help="The model to ask (default: the chat model).")
        parser.add_argument("--concurrency", type=int, default=4)
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, output, **options):
        if settings.OPENAI_HOST == "local":
            raise CommandError(
                "generate_ground_truth needs an LLM: set OPENAI_HOST (azure, openai or "
                "compatible) and its model settings. The offline answerer cannot write questions."
            )
        for name in ("count", "per_passage", "concurrency"):
            if options[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be at least 1.")
        from chat.evaluation.generate import generate, sample_passages

        passages = sample_passages(
            options["count"], options["seed"], options["collection"], options["public_only"]
        )
        if not passages:
            raise CommandError(
                "No passages to ask about: ingest and index documents first (manage.py ingest, "
                "sync_index)"
                + (
                    f", or check the collection {options['collection']!r}."
                    if options["collection"]
                    else "."
                )
            )
        progress = not options["no_progress"] and sys.stderr.isatty()
        lines, failures = asyncio.run(
            generate(
                passages, options["per_passage"], options["concurrency"], options["model"], progress
            )
        )
        for note in failures:
            self.stderr.write(f"skipped {note}")
        if not lines:
            raise CommandError("The model gave no usable question/answer pairs; nothing written.")
        path = Path(output)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(dump_line(line) for line in lines), encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot write {path}: {exc.strerror or exc}.") from None
        self.stdout.write(
            f"Wrote {len(lines)} question(s) from {len(passages) - len(failures)} passage(s) "
            f"to {path}. Read them through before relying on them."
        )
