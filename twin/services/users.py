# SPDX-License-Identifier: AGPL-3.0-or-later
"""User accounts and their credentials: create or update users with roles, revoke credentials.

Roles are Django groups named after :class:`twin.roles.Role`. A user's role
groups are set to exactly the roles given (declarative, so re-running a
provisioning script converges); groups that are not roles are left alone.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from twin.errors import InvalidInput
from twin.models import ApiToken, DeviceCredential
from twin.roles import Role

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class UserSpec:
    """What a provisioning step knows about an account."""

    username: str
    roles: tuple[Role, ...] = ()
    email: str | None = None
    password: str | None = None
    superuser: bool = False


def parse_roles(names: Iterable[str]) -> tuple[Role, ...]:
    """Role names (``tourism_officer`` or ``tourism-officer``) to roles, or :class:`InvalidInput`."""
    roles: list[Role] = []
    for name in names:
        try:
            roles.append(Role(name.strip().lower().replace("-", "_")))
        except ValueError:
            known = ", ".join(r.value for r in Role)
            raise InvalidInput(f"unknown role {name!r}; one of {known}") from None
    return tuple(dict.fromkeys(roles))


def ensure_user(spec: UserSpec) -> tuple[object, bool]:
    """Create the user or bring it in line with ``spec``; returns ``(user, created)``.

    Every user with a role may log into the admin (``is_staff``); what the
    admin shows them is decided by their capabilities, not by Django's
    per-model permissions. A password, when given, must pass the configured
    validators; without one a new account cannot log in with a password
    (API tokens still work).
    """
    username = spec.username.strip()
    if not username:
        raise InvalidInput("a username is required")
    user_model = get_user_model()
    with transaction.atomic():
        user, created = user_model.objects.select_for_update().get_or_create(
            **{user_model.USERNAME_FIELD: username})
        if spec.password is not None:
            try:
                validate_password(spec.password, user)
            except ValidationError as exc:
                raise InvalidInput("password refused: " + " ".join(exc.messages)) from None
            user.set_password(spec.password)
        elif created:
            user.set_unusable_password()
        if spec.email is not None:
            user.email = spec.email
        user.is_superuser = user.is_superuser or spec.superuser
        user.is_staff = user.is_superuser or bool(spec.roles) or user.is_staff
        user.save()
        _set_roles(user, spec.roles)
    logger.info("%s user %s with roles %s", "created" if created else "updated", username,
                ",".join(r.value for r in spec.roles) or "-")
    return user, created


def _set_roles(user, roles: tuple[Role, ...]) -> None:
    wanted = [Group.objects.get_or_create(name=role.value)[0] for role in roles]
    current = user.groups.filter(name__in=[r.value for r in Role])
    user.groups.remove(*[g for g in current if g not in wanted])
    user.groups.add(*wanted)


def revoke_api_tokens(token_ids: Iterable[int]) -> int:
    """Revoke tokens (they stay listed for audit); returns how many were still active."""
    with transaction.atomic():
        return ApiToken.objects.filter(pk__in=list(token_ids), revoked=False).update(revoked=True)



def deactivate_device_credentials(credential_ids: Iterable[int]) -> int:
    """Switch device logins off (kept for audit); returns how many were active."""
    with transaction.atomic():
        return DeviceCredential.objects.filter(pk__in=list(credential_ids), active=True).update(active=False)


__all__ = ["UserSpec", "deactivate_device_credentials", "ensure_user", "parse_roles", "revoke_api_tokens"]
