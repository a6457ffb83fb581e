# SPDX-License-Identifier: AGPL-3.0-or-later
"""``twin create-device-credential LAYER_SLUG EXTERNAL_ID``: a device's own login, shown once."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from twin.errors import TwinError
from twin.models import Feature
from twin.services import create_device_credential


class Command(BaseCommand):
    help = ("Create a login for a device (camera, sensor, boat) and print its client id and secret once "
            "(only a PBKDF2 hash of the secret is stored).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("layer_slug")
        parser.add_argument("external_id")
        parser.add_argument("--client-id", help="Client id to use (default: LAYER-EXTERNAL_ID).")

    def handle(self, *args, layer_slug: str, external_id: str, client_id: str | None, **options) -> None:
        feature = Feature.objects.select_related("layer").filter(
            layer__slug=layer_slug, external_id=external_id).first()
        if feature is None:
            raise CommandError(f"no feature {external_id!r} in layer {layer_slug!r}")
        if client_id is not None and not 1 <= len(client_id) <= 100:
            raise CommandError("--client-id must be 1 to 100 characters")
        try:
            credential, secret = create_device_credential(feature, client_id)
        except TwinError as exc:
            raise CommandError(exc.message) from None
        except IntegrityError:
            raise CommandError("that client id is taken; choose another with --client-id") from None
        self.stderr.write(f"device credential for {layer_slug}/{external_id}; the secret is shown only now:")
        self.stdout.write(f"client_id={credential.client_id}")
        self.stdout.write(f"secret={secret}")
