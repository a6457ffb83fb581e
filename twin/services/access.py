# SPDX-License-Identifier: AGPL-3.0-or-later
"""Issue and check API tokens and device credentials."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.utils import timezone

from twin.errors import InvalidInput, NotAuthenticated
from twin.models import ApiToken, DeviceCredential, Feature

TOKEN_PREFIX_LEN = 10
DEVICE_KINDS = frozenset({"camera", "sensor", "boat"})


def _digest(secret: str) -> str:
    # Tokens are long random strings, so a fast keyed-free SHA-256 is enough
    # (no dictionary to attack); device secrets may be typed by people and get PBKDF2.
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_token(user, name: str, expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """Create a token; the clear text is returned once and never stored."""
    prefix = secrets.token_hex(TOKEN_PREFIX_LEN // 2)
    secret = f"ct_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        token = ApiToken.objects.create(user=user, name=name, prefix=prefix, key_hash=_digest(secret),
                                        expires_at=expires_at)
    return token, secret


def authenticate_token(secret: str):
    """The active user owning ``secret``, or :class:`NotAuthenticated`."""
    parts = secret.split("_")
    if len(parts) < 3 or parts[0] != "ct":
        raise NotAuthenticated("malformed API token")
    token = ApiToken.objects.select_related("user").filter(prefix=parts[1], revoked=False).first()
    if token is None or not hmac.compare_digest(token.key_hash, _digest(secret)):
        raise NotAuthenticated("unknown or revoked API token")
    if token.expires_at and token.expires_at <= timezone.now():
        raise NotAuthenticated("API token expired")
    if not token.user.is_active:
        raise NotAuthenticated("user is disabled")
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token.user


def create_device_credential(feature: Feature, client_id: str | None = None) -> tuple[DeviceCredential, str]:
    """Give a device (camera, sensor, boat transponder) its own login."""
    if feature.layer.kind not in DEVICE_KINDS:
        raise InvalidInput(f"a {feature.layer.kind} feature is not a device")
    secret = secrets.token_urlsafe(24)
    client_id = client_id or f"{feature.layer.slug}-{feature.external_id}"
    with transaction.atomic():
        credential = DeviceCredential.objects.create(feature=feature, client_id=client_id,
                                                     secret_hash=make_password(secret))
    return credential, secret


def authenticate_device(client_id: str, secret: str) -> DeviceCredential:
    credential = DeviceCredential.objects.select_related("feature").filter(client_id=client_id, active=True).first()
    if credential is None or not check_password(secret, credential.secret_hash):
        raise NotAuthenticated("unknown device or wrong secret")
    DeviceCredential.objects.filter(pk=credential.pk).update(last_seen=timezone.now())
    return credential
