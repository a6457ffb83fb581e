# SPDX-License-Identifier: AGPL-3.0-or-later
"""Roles are Django groups; what each may do is this table (data, not code paths).

Views ask :func:`has_capability`; the groups are created after every
``migrate`` so a fresh database has them with no hand step.
"""
from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OPERATOR = "operator"
    PLANNER = "planner"
    RESPONDER = "responder"
    TOURISM_OFFICER = "tourism_officer"
    AGENCY_OFFICER = "agency_officer"
    LEADER = "leader"
    ADMINISTRATOR = "administrator"


class Capability(StrEnum):
    READ_PRIVATE_LAYERS = "read_private_layers"
    WRITE_FEATURES = "write_features"
    MANAGE_LAYERS = "manage_layers"
    READ_EVENTS = "read_events"
    HANDLE_EVENTS = "handle_events"
    PROCESS_REPORTS = "process_reports"
    READ_KPIS = "read_kpis"
    MANAGE_DEVICES = "manage_devices"


C = Capability
ROLE_CAPABILITIES: dict[Role, frozenset[Capability]] = {
    Role.OPERATOR: frozenset({C.READ_PRIVATE_LAYERS, C.READ_EVENTS, C.HANDLE_EVENTS}),
    Role.PLANNER: frozenset({C.READ_PRIVATE_LAYERS, C.WRITE_FEATURES, C.MANAGE_LAYERS}),
    Role.RESPONDER: frozenset({C.READ_PRIVATE_LAYERS, C.READ_EVENTS, C.HANDLE_EVENTS}),
    Role.TOURISM_OFFICER: frozenset({C.READ_PRIVATE_LAYERS, C.READ_EVENTS}),
    Role.AGENCY_OFFICER: frozenset({C.READ_PRIVATE_LAYERS, C.READ_EVENTS, C.PROCESS_REPORTS}),
    Role.LEADER: frozenset({C.READ_PRIVATE_LAYERS, C.READ_EVENTS, C.READ_KPIS}),
    Role.ADMINISTRATOR: frozenset(Capability),
}


def capabilities_of(user) -> frozenset[Capability]:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    if user.is_superuser:
        return frozenset(Capability)
    names = set(user.groups.values_list("name", flat=True))
    found: set[Capability] = set()
    for role, caps in ROLE_CAPABILITIES.items():
        if role.value in names:
            found |= caps
    return frozenset(found)


def has_capability(user, capability: Capability) -> bool:
    return capability in capabilities_of(user)


def sync_roles(**kwargs) -> None:
    """Create one group per role (idempotent; runs after ``migrate``)."""
    from django.contrib.auth.models import Group

    for role in Role:
        Group.objects.get_or_create(name=role.value)
