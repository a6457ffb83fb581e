# SPDX-License-Identifier: AGPL-3.0-or-later
"""``twin create-token USERNAME --name NAME [--days N]``: issue an API token, shown once."""
from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from twin.services import create_api_token


class Command(BaseCommand):
    help = ("Create an API token for a user and print it once (only its hash is stored). "
            "Clients send it as 'Authorization: Bearer <token>'.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", required=True, help="What the token is for (QGIS, notebook, ...).")
        parser.add_argument("--days", type=int, help="Expire after this many days (default: never).")

    def handle(self, *args, username: str, name: str, days: int | None, **options) -> None:
        user_model = get_user_model()
        user = user_model.objects.filter(**{user_model.USERNAME_FIELD: username}).first()
        if user is None:
            raise CommandError(f"no user {username!r}; create it first with `twin create-user`")
        if not user.is_active:
            raise CommandError(f"user {username!r} is disabled")
        if days is not None and not 1 <= days <= 3650:
            raise CommandError("--days must be between 1 and 3650")
        if not name.strip() or len(name) > 100:
            raise CommandError("--name must be 1 to 100 characters")
        expires_at = timezone.now() + timedelta(days=days) if days else None
        token, secret = create_api_token(user, name.strip(), expires_at=expires_at)
        until = f"until {expires_at:%Y-%m-%d %H:%M %Z}" if expires_at else "with no expiry"
        self.stderr.write(f"token {token.prefix}… for {username} ({name}) {until}; it is shown only now:")
        self.stdout.write(secret)
