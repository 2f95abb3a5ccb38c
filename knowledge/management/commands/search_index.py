from django.core.management.base import BaseCommand, CommandError

from knowledge.indexing import Indexer
from knowledge.search.base import SearchBackendError


class Command(BaseCommand):
    help = "Create or drop the search index (run sync_index afterwards to fill it)."

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--create", action="store_true")
        group.add_argument("--drop", action="store_true")

    def handle(self, *args, create, drop, **options):
        try:
            with Indexer() as indexer:
                if create:
                    indexer.call(indexer.backend.create_index)
                else:
                    indexer.call(indexer.backend.drop_index)
        except SearchBackendError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Index {'created' if create else 'dropped'} ({indexer.backend.name}).")
