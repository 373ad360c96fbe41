"""``manage.py load_demo [--force]``: the demo tenant and its two logins (fixtures/demo.json),
on the embedded defaults only.

The demo passwords are published in the README, so loading them into a deployment would open
it to anyone. ``make setup`` calls this command: it loads the fixture into a fresh embedded
database and does nothing otherwise -- in a deployment (``PRODUCTION``, which a
``DATABASE_URL`` implies), or when users exist already (so a changed demo password is not
reset on the next ``make run``). ``--force`` (``make setup DEMO=1``) loads it anyway."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

FIXTURE = Path(settings.BASE_DIR) / "fixtures" / "demo.json"

LOGINS = (
    "  superuser: admin / admin-demo-2026",
    "  staff of tenant 'demo': staff / staff-demo-2026",
)


class Command(BaseCommand):
    help = "Load the demo tenant and logins on the embedded defaults (or anywhere with --force)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force",
            action="store_true",
            help="Load them in a deployment or over existing users too (overwrites users 1 and 2).",
        )

    def handle(self, *args, force: bool = False, **options):
        if not force:
            if settings.PRODUCTION:
                self.stdout.write(
                    "Demo logins not loaded: this is a deployment (DATABASE_URL or PRODUCTION "
                    "is set) and their passwords are public. Create your own with "
                    "`manage.py createsuperuser`, or load them with `load_demo --force`."
                )
                return
            users = get_user_model().objects
            if users.exists():
                self.stdout.write(
                    "Demo logins not reloaded: the database has users already "
                    "(`load_demo --force` loads them again)."
                )
                if users.filter(username="admin").exists():
                    self.stdout.write("The demo logins, unless changed since:")
                    for line in LOGINS:
                        self.stdout.write(line)
                return
        call_command("loaddata", str(FIXTURE), verbosity=0)
        self.stdout.write("Demo tenant and logins loaded:")
        for line in LOGINS:
            self.stdout.write(line)
