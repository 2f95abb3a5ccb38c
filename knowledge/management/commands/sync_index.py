from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from knowledge.indexing import Indexer, missing_vectors
from knowledge.models import Document, IndexStatus
from knowledge.search.base import SearchBackendError
from knowledge.stale import recover_stale_claims


class Command(BaseCommand):
    help = (
        "Bring the search index in line with the database: sync every document whose index "
        "state is not current and remove entries of documents that no longer exist."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--rebuild", action="store_true", help="Drop and recreate the whole index first."
        )
        parser.add_argument(
            "--stale-after",
            type=float,
            default=900.0,
            metavar="SECONDS",
            help="Index tasks RUNNING longer than this are claims of a dead worker: fail them "
            "(their documents are synced here anyway). Default: %(default)s.",
        )

    def handle(self, *args, rebuild, stale_after, **options):
        quiet = options["verbosity"] < 1
        recover_stale_claims(timedelta(seconds=stale_after))
        with Indexer() as indexer:
            try:
                if rebuild:
                    indexer.call(indexer.backend.drop_index)
                    indexer.call(indexer.backend.create_index)
                    Document.objects.update(index_status=IndexStatus.PENDING, indexed_hash="")
                orphans = indexer.remove_orphans()
            except SearchBackendError as exc:
                raise CommandError(f"The search index is not reachable: {exc}") from exc
            ids = [
                d.pk
                for d in Document.objects.only("pk", "index_status", "content_hash", "indexed_hash")
                if not d.index_is_current
            ]
            failed = []
            for pk in tqdm(ids, desc="Syncing", unit="doc", disable=quiet or not ids):
                try:
                    indexer.sync(pk)
                except Exception as exc:
                    failed.append((pk, exc))
            # Every document is searchable by text by now; the local model's vectors follow
            # (also those a worker's vectors task never made).
            synced = len(ids) - len(failed)
            later = missing_vectors()
            for pk in tqdm(later, desc="Vectors", unit="doc", disable=quiet or not later):
                try:
                    indexer.add_vectors(pk)
                except Exception as exc:
                    failed.append((pk, exc))
        vectors = f", {len(later)} given their vectors" if later else ""
        self.stdout.write(
            f"{synced} document(s) synced{vectors}, {len(orphans)} orphaned document(s) removed "
            f"from the index, {len(failed)} failed."
        )
        for pk, error in failed:
            self.stderr.write(f"  FAILED document {pk}: {error}")
        if failed:
            raise CommandError(f"{len(failed)} document(s) could not be synced (see above).")
