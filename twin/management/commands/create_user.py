# SPDX-License-Identifier: AGPL-3.0-or-later
"""``twin create-user USERNAME --role planner``: create or update an account (idempotent)."""
from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError

from twin.errors import TwinError
from twin.roles import Role
from twin.services.users import UserSpec, ensure_user, parse_roles


class Command(BaseCommand):
    help = ("Create a user, or update it, with exactly the given roles. Safe to re-run. "
            "Roles: " + ", ".join(r.value for r in Role) + ".")

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", action="append", default=[], dest="roles",
                            help="A role (repeatable); the user's roles become exactly these.")
        parser.add_argument("--email")
        parser.add_argument("--password-from-env", metavar="VAR",
                            help="Read the password from this environment variable (never from argv).")
        parser.add_argument("--superuser", action="store_true", help="Also make the user a Django superuser.")

    def handle(self, *args, username: str, roles: list[str], email: str | None, password_from_env: str | None,
               superuser: bool, **options) -> None:
        password = None
        if password_from_env:
            password = os.environ.get(password_from_env)
            if not password:
                raise CommandError(f"environment variable {password_from_env} is not set or empty")
        try:
            spec = UserSpec(username=username, roles=parse_roles(roles), email=email, password=password,
                            superuser=superuser)
            user, created = ensure_user(spec)
        except TwinError as exc:
            raise CommandError(exc.message) from None
        state = "created" if created else "updated"
        shown = ", ".join(r.value for r in spec.roles) or "no role"
        self.stdout.write(self.style.SUCCESS(f"{state} user {user.get_username()} ({shown}"
                                             f"{', superuser' if user.is_superuser else ''})"))
