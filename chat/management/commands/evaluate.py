import asyncio
import sys
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.management.base import BaseCommand, CommandError

from chat.evaluation import ground_truth, metrics, report
from chat.evaluation.run import Options, run
from chat.protocol import RETRIEVAL_MODES
from core.clients import chat_model


class Command(BaseCommand):
    help = (
        "Ask every question of a ground-truth JSONL file (question, truth with [citations]) "
        "through the chat pipeline, or a server's POST /chat with --url, and score retrieval "
        "and answers. Writes eval_results.jsonl, summary.json and summary.md to --out. "
        "--compare RUN_A RUN_B prints the change of every metric between two runs."
    )

    def add_arguments(self, parser):
        parser.add_argument("ground_truth", nargs="?", help="The questions (JSON Lines).")
        parser.add_argument("--out", help="Output directory (default: eval/results/<name>).")
        parser.add_argument("--url", help="A running server to ask (its POST /chat).")
        parser.add_argument("--user", help="Ask as this user (in process; default anonymous).")
        parser.add_argument("--top", type=int, help="Passages to retrieve (default: server's).")
        parser.add_argument("--mode", choices=RETRIEVAL_MODES, help="Retrieval mode.")
        parser.add_argument("--collection", help="Only this collection (slug).")
        parser.add_argument("--concurrency", type=int, default=4)
        parser.add_argument("--limit", type=int, help="Only the first N questions.")
        parser.add_argument("--timeout", type=float, default=120.0, help="Seconds per request.")
        parser.add_argument(
            "--judge", action="store_true", help="Rate groundedness and relevance with the LLM."
        )
        parser.add_argument("--judge-model", help="The judge's model (default: the chat model).")
        parser.add_argument(
            "--compare", nargs=2, metavar=("RUN_A", "RUN_B"), help="Compare two runs."
        )
        parser.add_argument(
            "--by",
            action="append",
            default=[],
            metavar="FIELD",
            help="Also summarise per value of this input field (e.g. kind); repeatable.",
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        if options["compare"]:
            first, second = options["compare"]
            try:
                table = report.compare(
                    report.load_summary(first), report.load_summary(second), first, second
                )
            except report.ReportError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(table, ending="")
            return
        if not options["ground_truth"]:
            raise CommandError("Give a ground-truth JSONL file (or --compare RUN_A RUN_B).")
        self._check(options)
        try:
            questions = ground_truth.load(options["ground_truth"])
        except ground_truth.GroundTruthError as exc:
            raise CommandError(str(exc)) from None
        if options["limit"]:
            questions = questions[: options["limit"]]
        name = Path(options["ground_truth"]).stem
        out = Path(options["out"] or settings.BASE_DIR / "eval" / "results" / name)
        run_options = Options(
            top=options["top"],
            mode=options["mode"],
            collection=options["collection"],
            concurrency=options["concurrency"],
        )
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"Cannot write to {out}: {exc.strerror or exc}.") from None
        target = self._target(options)
        progress = not options["no_progress"] and sys.stderr.isatty()
        rows, about = asyncio.run(self._run(questions, target, run_options, options, progress))
        summary = metrics.summarize(rows)
        if options["by"]:
            summary["by"] = {field: metrics.summarize_by(rows, field) for field in options["by"]}
        summary["parameters"] = {
            "ground_truth": options["ground_truth"],
            "target": options["url"] or "in-process",
            "user": options["user"] or "anonymous",
            "collection": options["collection"],
            "concurrency": options["concurrency"],
            **about,
            "judge": (options["judge_model"] or chat_model()) if options["judge"] else None,
        }
        try:
            report.write(out, rows, summary)
        except OSError as exc:
            raise CommandError(
                f"Cannot write the results to {out}: {exc.strerror or exc}."
            ) from None
        self.stdout.write(report.markdown(summary), ending="")
        self.stdout.write(f"Results in {out}")
        if summary["answered"] == 0:
            first = next(row["error"] for row in rows if row.get("error"))
            raise CommandError(f"Every question failed; the first: {first}")

    def _check(self, options):
        if options["top"] is not None and not 1 <= options["top"] <= settings.CHAT_MAX_TOP:
            raise CommandError(f"--top must be from 1 to {settings.CHAT_MAX_TOP}.")
        if options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1.")
        if options["limit"] is not None and options["limit"] < 1:
            raise CommandError("--limit must be at least 1.")
        if options["url"] and options["user"]:
            raise CommandError("--user applies in process only; over --url the API is anonymous.")
        if options["judge"] and settings.OPENAI_HOST == "local":
            raise CommandError(
                "--judge needs an LLM: set OPENAI_HOST (azure, openai or compatible) and its "
                "model settings; the offline answerer cannot rate answers."
            )

    def _target(self, options):
        from chat.evaluation.targets import InProcess, OverHTTP

        if options["url"]:
            return OverHTTP(options["url"], options["timeout"], options["concurrency"])
        if not options["user"]:
            return InProcess(AnonymousUser())
        User = get_user_model()
        try:
            return InProcess(User.objects.get(**{User.USERNAME_FIELD: options["user"]}))
        except User.DoesNotExist:
            raise CommandError(f"No user named {options['user']!r}.") from None

    async def _run(self, questions, target, run_options, options, progress):
        judge = None
        if options["judge"]:
            from chat.evaluation.judge import Judge

            judge = Judge(options["judge_model"])
        try:
            return await run(questions, target, run_options, judge, progress)
        finally:
            await target.close()
            if judge is not None:
                await judge.close()
