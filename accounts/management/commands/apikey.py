"""manage.py apikey create USERNAME [--name NAME] [--expires-days N] | apikey revoke KEY_PREFIX"""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import api_keys


class Command(BaseCommand):
    help = "Create an API key for a user (printed once, on the last line) or revoke one."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="make a key; it is printed on the last line")
        create.add_argument("username")
        create.add_argument("--name", default="command line")
        create.add_argument("--expires-days", type=int, default=None)
        revoke = actions.add_parser("revoke", help="revoke the key with this prefix")
        revoke.add_argument("prefix", help="the key's prefix, e.g. rsk_1a2b3c4d5e6f")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "create":
            self._create(options["username"], options["name"], options["expires_days"])
        else:
            if not api_keys.revoke(options["prefix"]):
                raise CommandError(f"No active key has the prefix {options['prefix']!r}.")
            self.stdout.write(f"Revoked {options['prefix']}.")

    def _create(self, username: str, name: str, expires_days: int | None) -> None:
        if expires_days is not None and expires_days < 1:
            raise CommandError("--expires-days must be at least 1.")
        if not name.strip() or len(name) > 100:
            raise CommandError("--name must be 1 to 100 characters.")
        user = get_user_model()._default_manager.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user is called {username!r}.")
        row, key = api_keys.create_key(user, name.strip(), expires_days)
        expiry = f", expires {row.expires_at:%Y-%m-%d %H:%M} UTC" if row.expires_at else ""
        self.stdout.write(f"API key {row.name!r} for {username}{expiry}. It is shown only now:")
        self.stdout.write(key)
