import asyncio

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.management.base import BaseCommand, CommandError

from knowledge.access import access_for_sync
from knowledge.retrieval import search_sync
from knowledge.search import backend
from knowledge.search.base import SearchBackendError, SearchQuery


class Command(BaseCommand):
    help = (
        "Show what retrieval returns for a question, as a given user sees it now (the index, "
        "then the document rows), with scores."
    )

    def add_arguments(self, parser):
        parser.add_argument("query")
        parser.add_argument("--user", help="Username to search as (default: anonymous).")
        parser.add_argument("--collection", help="Only this collection (slug).")
        parser.add_argument("--top", type=int, default=5)

    def handle(self, *args, query, user, collection, top, **options):
        account: AbstractBaseUser | AnonymousUser
        if user:
            User = get_user_model()
            try:
                account = User.objects.get(**{User.USERNAME_FIELD: user})
            except User.DoesNotExist:
                raise CommandError(f"No user named {user!r}.") from None
        else:
            account = AnonymousUser()
        if top < 1 or top > 50:
            raise CommandError("--top must be between 1 and 50.")
        try:
            access = access_for_sync(account)
            query = SearchQuery(
                text=query, access=access, collection=collection, top=top, snippets=True
            )
            hits = search_sync(query, lambda q: asyncio.run(self._search(q)))
        except SearchBackendError as exc:
            raise CommandError(f"Search failed: {exc}") from exc
        who = account.get_username() if account.is_authenticated else "anonymous"
        self.stdout.write(f"Searching as {who}: {access.describe()}")
        if not hits:
            self.stdout.write("No results.")
        for rank, hit in enumerate(hits, start=1):
            self.stdout.write(
                f"{rank:>2}. {hit.score:8.4f}  [{hit.citation}]  {hit.title}"
                + (f"  ({hit.collection})" if hit.collection else "")
            )
            self.stdout.write(f"      {hit.snippet or hit.text[:200]}")

    @staticmethod
    async def _search(query):
        async with backend() as index:
            return await index.search(query)
