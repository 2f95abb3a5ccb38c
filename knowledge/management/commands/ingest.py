import logging
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.text import slugify
from tqdm import tqdm

from knowledge.extract import SUPPORTED, ExtractionError, extract_with_title
from knowledge.models import Collection, Document

log = logging.getLogger(__name__)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def read_file(path: Path) -> tuple[bytes, list[dict], str]:
    """A file's bytes, segments and title; refused before reading when over the size limit.

    Runs on one of `ingest`'s worker threads: each waits on the extraction sandbox's child
    process, so the parsing itself runs in parallel processes, each within its own budget.
    """
    size, limit = path.stat().st_size, settings.KNOWLEDGE_MAX_UPLOAD_BYTES
    if size > limit:  # refused before reading: a huge file never reaches memory
        raise ExtractionError(
            f"The file is {size / 1048576:.1f} MB; the limit is {limit / 1048576:.0f} MB."
        )
    data = path.read_bytes()
    segments, title = extract_with_title(path.name, data)
    return data, segments, title


def in_parallel[T, R](
    func: Callable[[T], R], items: Iterable[T], workers: int
) -> Iterator[tuple[T, R | BaseException]]:
    """(item, result or exception) as each finishes, with at most 2 x workers read ahead, so a
    large folder is never all in memory at once."""
    iterator = iter(items)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest") as pool:
        pending: dict[Future[R], T] = {}
        while True:
            while len(pending) < 2 * workers:
                item = next(iterator, None)
                if item is None:
                    break
                pending[pool.submit(func, item)] = item
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                item = pending.pop(future)
                error = future.exception()
                yield item, error if error is not None else future.result()


class Command(BaseCommand):
    help = (
        "Add files or folders of files to the knowledge base. Ingesting a file again updates the "
        "document of the same file name in the same collection instead of adding a second one. "
        "Files are read in parallel (--workers); the database is written from one thread."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", help="Files or folders (searched recursively).")
        parser.add_argument("--collection", help="Collection slug; created when missing.")
        parser.add_argument(
            "--groups",
            nargs="+",
            default=[],
            metavar="NAME",
            help="Only these groups may read the documents (created when missing). "
            "Without it, everyone may.",
        )
        parser.add_argument("--unpublished", action="store_true", help="Add them unpublished.")
        parser.add_argument(
            "--workers",
            type=int,
            default=default_workers(),
            help="Files read at once, each in its own sandboxed process (default: CPU count).",
        )

    def handle(self, *args, paths, collection, groups, unpublished, workers, **options):
        files, skipped = self._collect(paths)
        if not files:
            raise CommandError("No supported files found. Supported: " + ", ".join(SUPPORTED))
        coll = self._collection(collection) if collection else None
        group_objs = [Group.objects.get_or_create(name=name)[0] for name in groups]
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        failures: list[tuple[Path, str]] = []
        quiet = options["verbosity"] < 1
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        progress = tqdm(total=len(files), desc="Ingesting", unit="file", disable=quiet)
        with progress:
            for path, outcome in in_parallel(read_file, files, workers):
                progress.update()
                try:
                    if isinstance(outcome, BaseException):
                        raise outcome
                    counts[self._save(path, *outcome, coll, group_objs, not unpublished)] += 1
                except (ExtractionError, OSError) as exc:
                    failures.append((path, str(exc)))
                except Exception as exc:  # one bad file never costs the others their turn
                    log.error("ingesting %s failed", path, exc_info=exc)
                    failures.append((path, f"unexpected error ({type(exc).__name__}: {exc})"))
        failures.sort(key=lambda failure: str(failure[0]))
        summary = ", ".join(f"{n} {k}" for k, n in counts.items())
        self.stdout.write(f"{summary}, {len(failures)} failed, {len(skipped)} skipped.")
        for path in skipped:
            self.stdout.write(f"  skipped {path}: unsupported file type")
        for path, reason in failures:
            self.stderr.write(f"  FAILED {path}: {reason}")
        if failures:
            raise CommandError(f"{len(failures)} file(s) could not be ingested (see above).")

    def _collect(self, paths) -> tuple[list[Path], list[Path]]:
        files: list[Path] = []
        skipped: list[Path] = []
        for raw in paths:
            path = Path(raw)
            if path.is_dir():
                for child in sorted(path.rglob("*")):
                    if child.is_file() and not child.name.startswith(("_", ".")):
                        if child.name.lower() == "readme.md":
                            continue
                        bucket = files if child.suffix.lower() in SUPPORTED else skipped
                        bucket.append(child)
            elif path.is_file():
                files.append(path)
            else:
                raise CommandError(f"{raw}: no such file or folder")
        return files, skipped

    @staticmethod
    def _collection(slug: str) -> Collection:
        clean = slugify(slug)
        if not clean:
            raise CommandError(f"--collection {slug!r} is not a usable slug")
        coll, _ = Collection.objects.get_or_create(
            slug=clean, defaults={"name": clean.replace("-", " ").title()}
        )
        return coll

    def _save(self, path: Path, data: bytes, segments, title, coll, groups, published) -> str:
        with transaction.atomic():
            doc = Document.objects.filter(source_name=path.name, collection=coll).first()
            created = doc is None
            if doc is None:
                doc = Document(source_name=path.name, collection=coll)
            elif (
                doc.extracted == segments
                and doc.title == title
                and (set(doc.groups.all()) == set(groups) and doc.published == published)
            ):
                return "unchanged"
            doc.title = title
            doc.extracted = segments
            doc.published = published
            doc.file.save(path.name, ContentFile(data), save=False)
            doc.save()
            doc.groups.set(groups)
        return "created" if created else "updated"
