# SPDX-License-Identifier: AGPL-3.0-or-later
"""Rules are plug-ins: a class with its configuration model beside it, in a registry.

The registry maps a rule name to a dotted path (as ``layers/registry.py``
maps providers), so a site can add its own rule without editing this file:
``register("mine", "mysite.rules.MineRule")``. Built-in rules are wired in
``IngestionConfig.ready()``; tests swap rules with :func:`registered`.
"""
from __future__ import annotations

import contextlib
import importlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ingestion.messages import Reading

if TYPE_CHECKING:
    from ingestion.routing import Router
    from ingestion.rules.context import BatchContext

logger = logging.getLogger(__name__)


class RuleConfig(BaseModel):
    """Base of every rule's configuration: strict, every field described."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    enabled: bool = Field(default=True, description="Run this rule.")
    update_interval_s: float = Field(
        default=10.0, ge=0, le=3600,
        description="While a condition lasts, write new values of its event (same severity) at most this often, "
                    "in seconds of reading time; a higher severity is written at once. 0: on every batch.")


class Rule(ABC):
    """Turns readings into geo-events.

    Subclasses set ``name`` (also the ``rule`` of their ``RuleState`` rows and
    the ``kind`` of their events) and ``config_model``, and implement
    :meth:`evaluate`. Rules with timers (a condition that arises from the
    *absence* of data) set ``supports_timers`` and implement :meth:`tick`.
    """

    name: ClassVar[str]
    config_model: ClassVar[type[RuleConfig]] = RuleConfig
    supports_timers: ClassVar[bool] = False
    #: Evaluation order, lowest first: cheap, urgent rules (a fire alarm) must
    #: not wait behind costly ones (hourly AQI) in the same batch.
    priority: ClassVar[int] = 50
    #: True when :meth:`wants` looks only at a reading's *shape* — its kind,
    #: stream, the names of its values and whether it has a position — never
    #: at the values themselves. The engine then asks once per shape in a
    #: batch instead of once per reading (a gateway's batch of 100 readings
    #: has one shape): asking every rule about every reading was a fifth of
    #: a worker's time on batched payloads.
    wants_by_shape: ClassVar[bool] = False

    def __init__(self, cfg: RuleConfig, router: Router) -> None:
        self.cfg = cfg
        self.router = router

    @property
    def actor(self) -> str:
        """How the rule signs event history (``rule:<name>``)."""
        return f"rule:{self.name}"

    def wants(self, reading: Reading) -> bool:
        """Cheap filter: does this reading concern the rule at all?"""
        return True

    @abstractmethod
    def evaluate(self, readings: Sequence[Reading], ctx: BatchContext) -> None:
        """Process the readings of one committed batch (already filtered by :meth:`wants`)."""

    def tick(self, now: datetime) -> int:
        """Run timers; returns how many events were opened or closed."""
        raise NotImplementedError(f"rule {self.name} has no timers")


class UnknownRuleError(LookupError):
    """A configuration names a rule that is not registered."""


BUILTIN_RULES: dict[str, str] = {
    "threshold": "ingestion.rules.threshold.ThresholdRule",
    "air_quality": "ingestion.rules.air_quality.AirQualityRule",
    "offline": "ingestion.rules.offline.OfflineRule",
    "geofence": "ingestion.rules.geofence.GeofenceRule",
    "fire": "ingestion.rules.fire.FireRule",
}

_RULES: dict[str, str | type[Rule]] = {}
_generation = 0   # bumped on every change, so the engine knows to rebuild its rules


def generation() -> int:
    """A counter that changes whenever the registry does."""
    return _generation


def register(name: str, rule: str | type[Rule]) -> None:
    """Register a rule class (or its dotted path, imported on first use) under ``name``."""
    global _generation
    _RULES[name] = rule
    _generation += 1


def _unregister(name: str) -> None:
    global _generation
    _RULES.pop(name, None)
    _generation += 1


def register_builtin_rules() -> None:
    for name, path in BUILTIN_RULES.items():
        register(name, path)


def reset() -> None:
    """Forget every registration (tests; ``ready()`` registers the built-ins again)."""
    global _generation
    _RULES.clear()
    _generation += 1


def rule_names() -> list[str]:
    if not _RULES:
        register_builtin_rules()
    return list(_RULES)


def rule_class(name: str) -> type[Rule]:
    """The class registered as ``name``, imported if it was given as a path."""
    if not _RULES:
        register_builtin_rules()
    try:
        entry = _RULES[name]
    except KeyError:
        raise UnknownRuleError(f"unknown rule {name!r}; known: {', '.join(sorted(_RULES))}") from None
    if isinstance(entry, str):
        module, cls = entry.rsplit(".", 1)
        entry = getattr(importlib.import_module(module), cls)
        _RULES[name] = entry
    return entry


@contextlib.contextmanager
def registered(name: str, rule: str | type[Rule]) -> Iterator[None]:
    """Register ``rule`` as ``name`` for the duration of a block (tests, plugins)."""
    if not _RULES:
        register_builtin_rules()
    previous = _RULES.get(name)
    register(name, rule)
    try:
        yield
    finally:
        if previous is None:
            _unregister(name)
        else:
            register(name, previous)


__all__ = ["BUILTIN_RULES", "Rule", "RuleConfig", "UnknownRuleError", "generation", "register",
           "register_builtin_rules", "registered", "reset", "rule_class", "rule_names"]
