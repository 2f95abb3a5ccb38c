from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand

SAMPLE_KB = Path(settings.BASE_DIR) / "sample_kb"
# folder, collection slug, groups that may read it (none: everyone)
SAMPLE_FOLDERS = [
    ("handbook", "handbook", []),
    ("engineering", "engineering", ["Engineering"]),
    ("hr-only", "hr", ["HR"]),
]
DEMO_PASSWORD = "ragsite-demo"
# username, staff, groups
DEMO_USERS = [
    ("admin", True, []),
    ("erin", False, ["Engineering"]),
    ("harper", False, ["HR"]),
]


class Command(BaseCommand):
    help = "Create the demo accounts and ingest the sample knowledge base (safe to run again)."

    def handle(self, *args, **options):
        User = get_user_model()
        for username, staff, groups in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.is_staff = user.is_superuser = staff
                user.set_password(DEMO_PASSWORD)
                user.save()
            user.groups.add(*[Group.objects.get_or_create(name=g)[0] for g in groups])
        for folder, collection, groups in SAMPLE_FOLDERS:
            ingest = [str(SAMPLE_KB / folder), "--collection", collection, "--verbosity", "0"]
            if groups:
                ingest += ["--groups", *groups]
            call_command("ingest", *ingest)
        self.stdout.write(
            f"Demo accounts (password for all: {DEMO_PASSWORD}): admin (staff, sees everything), "
            "erin (Engineering), harper (HR). Anonymous visitors see the public handbook."
        )
