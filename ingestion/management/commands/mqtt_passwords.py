# SPDX-License-Identifier: AGPL-3.0-or-later
"""``twin mqtt-passwords``: write the broker's password file and ACL from the database, then reload it.

    twin mqtt-passwords --issue hue-sensors aq-0012     # a device login, secret shown once; files rewritten
    twin mqtt-passwords                                  # rewrite the files (after deactivating a device ...)

Defaults suit the project-local Mosquitto (``.run/mosquitto/passwd`` and
``acl``, read by its authenticated device listener; see docs/ingestion.md).
The worker's own ``ingest`` account gets the password in the environment
variable ``CITYTWIN_MQTT_INGEST_PASSWORD`` when it is set.
"""
from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from ingestion.broker_auth import issue_device_login, reload_broker, render_broker_files, write_atomically
from twin.errors import TwinError
from twin.models import Feature

RUN_DIR = Path(settings.BASE_DIR) / ".run" / "mosquitto"


class Command(BaseCommand):
    help = "Write Mosquitto's password file and ACL from the device credentials, and make the broker reload them."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--issue", nargs=2, metavar=("LAYER", "EXTERNAL_ID"),
                            help="First issue a broker login for this device (prints client id and secret once).")
        parser.add_argument("--client-id", help="With --issue: the client id (default LAYER-EXTERNAL_ID).")
        parser.add_argument("--passwd", default=str(RUN_DIR / "passwd"), help="Password file to write.")
        parser.add_argument("--acl", default=str(RUN_DIR / "acl"), help="ACL file to write.")
        parser.add_argument("--topic-root", default="city", help="Topic root of the ACL (default city).")
        parser.add_argument("--pid-file", default=str(RUN_DIR / "mosquitto.pid"),
                            help="Broker pid file, for the SIGHUP that reloads the files.")
        parser.add_argument("--no-reload", action="store_true", help="Write the files only.")

    def handle(self, *args, issue, client_id, passwd, acl, topic_root, pid_file, no_reload, **options) -> None:
        if issue:
            self._issue(*issue, client_id)
        files = render_broker_files(topic_root, os.environ.get("CITYTWIN_MQTT_INGEST_PASSWORD") or None)
        write_atomically(Path(passwd), files.passwd)
        write_atomically(Path(acl), files.acl)
        for problem in files.skipped:
            self.stderr.write(f"skipped {problem}")
        self.stdout.write(f"{files.devices} device login(s) written to {passwd} and {acl}")
        if not no_reload:
            if reload_broker(Path(pid_file)):
                self.stdout.write("broker reloaded (SIGHUP)")
            else:
                self.stderr.write(f"no running Mosquitto found from {pid_file}; reload it yourself")

    def _issue(self, layer_slug: str, external_id: str, client_id: str | None) -> None:
        feature = Feature.objects.select_related("layer").filter(layer__slug=layer_slug,
                                                                  external_id=external_id).first()
        if feature is None:
            raise CommandError(f"no feature {external_id!r} in layer {layer_slug!r}")
        try:
            credential, secret = issue_device_login(feature, client_id)
        except TwinError as exc:
            raise CommandError(exc.message) from None
        except IntegrityError:
            raise CommandError("that client id is taken; choose another with --client-id") from None
        self.stderr.write(f"broker login for {layer_slug}/{external_id}; the secret is shown only now:")
        self.stdout.write(f"client_id={credential.client_id}")
        self.stdout.write(f"secret={secret}")
