# SPDX-License-Identifier: AGPL-3.0-or-later
"""The rule engine: the one entry point the ingestion sink calls.

``evaluate(readings)`` runs after each committed batch, in whichever worker
process committed it. Every enabled rule sees the readings it wants, inside
its own transaction; a rule that fails is logged with its traceback and
rolled back without stopping the others (the readings are already stored).
Rules lock their ``RuleState`` rows, so concurrent workers are safe.

Configuration is data: ``rules.toml`` beside the city (``fixtures/cities/
<DEFAULT_CITY>/rules.toml``, or the file named by the ``RULES_CONFIG``
setting or environment variable), with a ``[routing]`` table and one
``[rules.<name>]`` table per rule, each validated by that rule's own
pydantic model.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ingestion.messages import Reading
from ingestion.routing import Router, RoutingConfig
from ingestion.rules import base
from ingestion.rules.base import Rule, RuleConfig, UnknownRuleError
from ingestion.rules.context import BatchContext, DeviceCache
from twin.errors import InvalidInput

logger = logging.getLogger(__name__)


class RulesConfigError(InvalidInput):
    """``rules.toml`` cannot be read or does not validate."""

    code = "InvalidRulesConfig"


class RulesFile(BaseModel):
    """The top level of ``rules.toml``; each ``rules.<name>`` table is checked by its rule."""

    model_config = ConfigDict(extra="forbid")

    routing: RoutingConfig = Field(default_factory=RoutingConfig, description="How events find their agency.")
    rules: dict[str, dict[str, Any]] = Field(default_factory=dict, description="One table per registered rule.")


@dataclass(frozen=True, slots=True)
class RulesSettings:
    """Validated configuration: routing and one config per registered rule."""

    routing: RoutingConfig = field(default_factory=RoutingConfig)
    rules: Mapping[str, RuleConfig] = field(default_factory=dict)
    source: str = "(defaults)"


def parse_rules(data: Mapping[str, Any], source: str = "(inline)") -> RulesSettings:
    """Validate configuration data; rules left out get their defaults."""
    try:
        top = RulesFile.model_validate(dict(data))
    except ValidationError as exc:
        raise RulesConfigError(f"invalid rules config {source}: {exc}", problems=_problems(exc)) from None
    configs: dict[str, RuleConfig] = {}
    problems: list[str] = []
    for name in sorted(set(base.rule_names()) | set(top.rules)):
        try:
            cls = base.rule_class(name)
            configs[name] = cls.config_model.model_validate(top.rules.get(name, {}))
        except UnknownRuleError as exc:
            problems.append(f"rules.{name}: {exc}")
        except ValidationError as exc:
            problems += [f"rules.{name}.{p}" for p in _problems(exc)]
    if problems:
        raise RulesConfigError(f"invalid rules config {source}: " + "; ".join(problems), problems=problems)
    return RulesSettings(routing=top.routing, rules=configs, source=source)


def _problems(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()]


def rules_config_path() -> Path:
    """Where ``rules.toml`` is read from (read at load time, never at import)."""
    explicit = getattr(settings, "RULES_CONFIG", None) or os.environ.get("RULES_CONFIG")
    if explicit:
        return Path(explicit)
    return Path(settings.CITY_FIXTURES_DIR) / settings.DEFAULT_CITY / "rules.toml"


def load_rules(path: Path | str | None = None) -> RulesSettings:
    """Read and validate ``rules.toml``; a missing default file means built-in defaults."""
    path = Path(path) if path is not None else rules_config_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        logger.warning("no rules config at %s; using each rule's defaults and no routing fallback", path)
        return parse_rules({}, source="(defaults)")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RulesConfigError(f"cannot read rules config {path}: {exc}") from None
    return parse_rules(data, source=str(path))


class _Shapes:
    """A batch's readings grouped by shape, for rules whose ``wants`` reads only that (``Rule.wants_by_shape``)."""

    __slots__ = ("readings", "index", "samples")

    def __init__(self, readings: Sequence[Reading]) -> None:
        self.readings = readings
        seen: dict[tuple, int] = {}
        self.samples: list[Reading] = []
        index = []
        for reading in readings:
            shape = (reading.kind, reading.stream, tuple(reading.values), reading.lon is None or reading.lat is None)
            at = seen.get(shape)
            if at is None:
                at = seen[shape] = len(self.samples)
                self.samples.append(reading)
            index.append(at)
        self.index = index

    def wanted(self, rule: Rule) -> Sequence[Reading]:
        verdicts = [rule.wants(sample) for sample in self.samples]
        if all(verdicts):
            return list(self.readings)      # a list of its own: a rule may sort it
        if not any(verdicts):
            return []
        return [reading for reading, at in zip(self.readings, self.index) if verdicts[at]]


class Engine:
    """The enabled rules, built once from configuration."""

    def __init__(self, rules_settings: RulesSettings, *, strict: bool = False) -> None:
        self.settings = rules_settings
        self.router = Router(rules_settings.routing)
        self.strict = strict   # re-raise rule errors (tests) instead of logging them
        self.rules: list[Rule] = []
        for name, cfg in rules_settings.rules.items():
            if cfg.enabled:
                self.rules.append(base.rule_class(name)(cfg, self.router))
        self.rules.sort(key=lambda rule: (rule.priority, rule.name))
        self.devices = DeviceCache()

    def rule(self, name: str) -> Rule:
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise UnknownRuleError(f"rule {name!r} is not enabled")

    def evaluate(self, readings: Sequence[Reading]) -> None:
        if not readings:
            return
        ctx = BatchContext(readings, self.devices)
        shapes = _Shapes(readings)
        for rule in self.rules:
            wanted = shapes.wanted(rule) if rule.wants_by_shape else [r for r in readings if rule.wants(r)]
            if wanted:
                self._run(rule, "evaluate", lambda: rule.evaluate(wanted, ctx))

    def tick(self, now: datetime | None = None) -> dict[str, int]:
        """Run every rule's timers once; returns events opened or closed per rule."""
        now = now or timezone.now()
        done: dict[str, int] = {}
        for rule in self.rules:
            if rule.supports_timers:
                done[rule.name] = self._run(rule, "tick", lambda: rule.tick(now)) or 0
        return done

    def _run(self, rule: Rule, what: str, call):
        try:
            with transaction.atomic():
                return call()
        except Exception:
            if self.strict:
                raise
            logger.exception("rule %s failed in %s; its changes for this batch were rolled back", rule.name, what)
            return None


_engine: Engine | None = None
_engine_generation = -1


def get_engine() -> Engine:
    """The process's engine, rebuilt when the rule registry changed."""
    global _engine, _engine_generation
    if _engine is None or _engine_generation != base.generation():
        previous_strict = _engine.strict if _engine else False
        _engine = Engine(load_rules(), strict=previous_strict)
        _engine_generation = base.generation()
    return _engine


def reset_engine() -> None:
    """Forget the engine; the next call reads ``rules.toml`` again."""
    global _engine
    _engine = None


@contextlib.contextmanager
def configured(rules: RulesSettings | Mapping[str, Any] | None = None, *, strict: bool = True) -> Iterator[Engine]:
    """Use this configuration for the duration of a block (tests)."""
    global _engine, _engine_generation
    previous = (_engine, _engine_generation)
    cfg = rules if isinstance(rules, RulesSettings) else parse_rules(rules or {})
    _engine, _engine_generation = Engine(cfg, strict=strict), base.generation()
    try:
        yield _engine
    finally:
        _engine, _engine_generation = previous


def evaluate(readings: list[Reading]) -> None:
    """Evaluate every enabled rule on one committed batch of readings.

    Synchronous; safe to call from several worker processes at once.
    """
    get_engine().evaluate(readings)


def run_timers(now: datetime | None = None) -> dict[str, int]:
    """Run the timer rules (offline devices) once."""
    return get_engine().tick(now)


__all__ = ["Engine", "RulesConfigError", "RulesFile", "RulesSettings", "configured", "evaluate", "get_engine",
           "load_rules", "parse_rules", "reset_engine", "rules_config_path", "run_timers"]
