# SPDX-License-Identifier: AGPL-3.0-or-later
"""Device authentication at the broker: Mosquitto password file and ACL from the database.

Each device logs in to Mosquitto with its ``DeviceCredential.client_id`` as
user name and the secret issued with it; the ACL lets it publish only under
its own topic ``{root}/{city}/{kind}/{external_id}/+``. The ingestion worker
has its own ``ingest`` account (read everything under the root, write its
availability topics). ``twin mqtt-passwords`` writes both files and sends
the broker ``SIGHUP`` so it reloads them without dropping connections.

Mosquitto hashes passwords itself (``$7$``: PBKDF2-SHA512, 101 iterations,
12-byte salt; ``mosquitto_passwd`` in 2.0), so a device's secret is hashed
that way too when its login is issued (:func:`issue_device_login`); the
clear secret is never stored.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
import signal
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from ingestion.models import BrokerLogin
from ingestion.topics import valid_topic_level
from twin.models import DeviceCredential, Feature
from twin.services import create_device_credential

logger = logging.getLogger(__name__)

INGEST_USER = "ingest"
MOSQUITTO_ITERATIONS = 101   # mosquitto_passwd's default for $7$ in Mosquitto 2.0


def mosquitto_hash(secret: str, salt: bytes | None = None, iterations: int = MOSQUITTO_ITERATIONS) -> str:
    """A password hash in Mosquitto's ``$7$`` format.

    >>> mosquitto_hash("s3cret", salt=bytes(12))[:24]
    '$7$101$AAAAAAAAAAAAAAAA$'
    """
    salt = secrets.token_bytes(12) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def issue_device_login(feature: Feature, client_id: str | None = None) -> tuple[DeviceCredential, str]:
    """A device credential usable at the broker too; the secret is returned once."""
    with transaction.atomic():
        credential, secret = create_device_credential(feature, client_id)
        BrokerLogin.objects.create(credential=credential, password_hash=mosquitto_hash(secret))
    return credential, secret


@dataclass(slots=True)
class BrokerFiles:
    """What :func:`render_broker_files` produced (and what it had to leave out)."""

    passwd: str
    acl: str
    devices: int = 0
    skipped: list[str] = field(default_factory=list)


def _user(name: str) -> bool:
    # One line per user in both files: no separators, no whitespace.
    return bool(name) and not any(c in name for c in ":\n\r \t#") and valid_topic_level(name)


def render_broker_files(root: str = "city", ingest_password: str | None = None) -> BrokerFiles:
    """Password file and ACL for every active credential that has a broker login."""
    passwd: list[str] = []
    acl = ["# Written by `twin mqtt-passwords`; edit the database, not this file.", ""]
    if ingest_password:
        passwd.append(f"{INGEST_USER}:{mosquitto_hash(ingest_password)}")
        acl += [f"user {INGEST_USER}", f"topic read {root}/#", f"topic write {root}/+/ingest/#", ""]
    skipped: list[str] = []
    logins = (BrokerLogin.objects.filter(credential__active=True)
              .select_related("credential__feature__layer__city").order_by("credential__client_id"))
    for login in logins:
        credential = login.credential
        layer = credential.feature.layer
        city = layer.city.slug if layer.city else ""
        external_id = credential.feature.external_id
        if credential.client_id == INGEST_USER or not _user(credential.client_id):
            skipped.append(f"{credential.client_id!r}: not usable as a broker user name")
        elif not city or not valid_topic_level(external_id):
            skipped.append(f"{credential.client_id!r}: device {external_id!r} has no topic (no city, or / + # in id)")
        else:
            passwd.append(f"{credential.client_id}:{login.password_hash}")
            acl += [f"user {credential.client_id}", f"topic write {root}/{city}/{layer.kind}/{external_id}/+", ""]
    without = DeviceCredential.objects.filter(active=True, broker_login__isnull=True).count()
    if without:
        skipped.append(f"{without} active credential(s) without a broker login (issue one with --issue)")
    return BrokerFiles(passwd="\n".join(passwd) + "\n" if passwd else "", acl="\n".join(acl) + "\n",
                       devices=len(passwd) - bool(ingest_password), skipped=skipped)


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` in one rename, owner-only, so the broker never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(temporary, path)


def reload_broker(pid_file: Path) -> bool:
    """SIGHUP the broker whose pid is in ``pid_file`` (Mosquitto re-reads passwords and ACL)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    try:
        if Path(f"/proc/{pid}/comm").read_text().strip() != "mosquitto":
            return False   # a stale pid file naming some other process: never signal it
        os.kill(pid, signal.SIGHUP)
    except (OSError, ProcessLookupError):
        return False
    return True


__all__ = ["BrokerFiles", "INGEST_USER", "issue_device_login", "mosquitto_hash", "reload_broker",
           "render_broker_files", "write_atomically"]
