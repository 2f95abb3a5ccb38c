import logging
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


class Command(BaseCommand):
    help = (
        "Add files or folders of files to the knowledge base. Ingesting a file again updates the "
        "document of the same file name in the same collection instead of adding a second one."
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

    def handle(self, *args, paths, collection, groups, unpublished, **options):
        files, skipped = self._collect(paths)
        if not files:
            raise CommandError("No supported files found. Supported: " + ", ".join(SUPPORTED))
        coll = self._collection(collection) if collection else None
        group_objs = [Group.objects.get_or_create(name=name)[0] for name in groups]
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        failures: list[tuple[Path, str]] = []
        quiet = options["verbosity"] < 1
        for path in tqdm(files, desc="Ingesting", unit="file", disable=quiet):
            try:
                outcome = self._ingest(path, coll, group_objs, not unpublished)
                counts[outcome] += 1
            except (ExtractionError, OSError) as exc:
                failures.append((path, str(exc)))
            except Exception as exc:  # one bad file never costs the others their turn
                log.exception("ingesting %s failed", path)
                failures.append((path, f"unexpected error ({type(exc).__name__}: {exc})"))
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

    def _ingest(self, path: Path, coll, groups, published) -> str:
        size, limit = path.stat().st_size, settings.KNOWLEDGE_MAX_UPLOAD_BYTES
        if size > limit:  # refused before reading: a huge file never reaches memory
            raise ExtractionError(
                f"The file is {size / 1048576:.1f} MB; the limit is {limit / 1048576:.0f} MB."
            )
        data = path.read_bytes()
        # Read (within its budget) before the transaction opens: no lock waits on a parser.
        segments, title = extract_with_title(path.name, data)
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
