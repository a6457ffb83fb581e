# SPDX-License-Identifier: AGPL-3.0-or-later
"""``twin simulate``: drive the simulated device fleet of a city over MQTT (docs/simulator.md).

Registers the fleet described in ``simulator.toml`` (idempotent), then
publishes its readings at ``--rate`` messages per second until ``--duration``
is over or the process is stopped; ``--once`` publishes one message per
device and exits (tests, smoke checks).
"""
from __future__ import annotations

import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from ingestion.simulator.config import SimulatorConfigError, load_fleet
from ingestion.simulator.fleet import fleet_devices, register_fleet
from ingestion.simulator.plan import make_plan
from ingestion.simulator.publisher import PublishStats, run_fleet
from ingestion.simulator.readiness import IngestNotReady, wait_for_ingest
from twin.errors import TwinError
from twin.shutdown import stop_on_signals


class Command(BaseCommand):
    help = ("Register the simulated devices of a city (air-quality stations replaying real PM2.5, river gauges, "
            "fire alarms) and publish their readings over MQTT at an adjustable rate.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--config", help="simulator.toml (default: fixtures/cities/<DEFAULT_CITY>/simulator.toml)")
        parser.add_argument("--rate", type=float, help="Messages per second for the whole fleet (0 = flat out; "
                            "default: the file's rate).")
        parser.add_argument("--batch", type=int, default=1, help="Readings per message, as gateways and buffering "
                            "loggers send (default 1).")
        parser.add_argument("--duration", type=float, default=0, help="Seconds to run (default 0 = until stopped).")
        parser.add_argument("--qos", type=int, choices=[0, 1], default=1, help="MQTT QoS (default 1).")
        parser.add_argument("--processes", type=int, default=1, help="Publisher processes (one reached ~33k msg/s "
                            "at QoS 0 and ~10k at QoS 1 on the 2-core dev machine; docs/simulator.md).")
        parser.add_argument("--once", action="store_true", help="Publish one message per device, then exit.")
        parser.add_argument("--broker", help="mqtt://host:port (default: MQTT_URL).")
        parser.add_argument("--topic-root", help="Override the file's topic root.")
        parser.add_argument("--hour-s", type=float, help="Override the file's seconds per simulated hour.")
        parser.add_argument("--no-register", action="store_true", help="Do not (re)register the devices.")
        parser.add_argument("--wait-for-ingest", type=float, default=0, metavar="SECONDS", help="First wait (at "
                            "most SECONDS) until an ingestion worker says online on the broker, so that nothing "
                            "is published before it subscribed (default 0 = do not wait).")
        parser.add_argument("--register-only", action="store_true", help="Register the devices and exit.")

    def handle(self, *args, **options) -> None:
        try:
            cfg = load_fleet(options["config"])
            overrides = {k: v for k, v in (("topic_root", options["topic_root"]), ("hour_s", options["hour_s"]))
                         if v is not None}
            if overrides:
                cfg = cfg.model_validate({**cfg.model_dump(), **overrides})
            devices = self._devices(cfg, options)
            if options["register_only"]:
                return
            plan = make_plan(cfg, devices, options["broker"] or settings.MQTT_URL, rate=options["rate"],
                             batch=options["batch"], qos=options["qos"], duration=options["duration"],
                             once=options["once"])
        except (TwinError, SimulatorConfigError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        connections.close_all()   # publishing needs no database; do not hold a connection for hours
        if options["wait_for_ingest"] > 0:
            self._wait_for_ingest(plan, cfg, options["wait_for_ingest"])
        stop = threading.Event()
        stop_on_signals(stop)
        what = "one message per device" if plan.once else (
            f"{plan.rate:g} msg/s" if plan.rate else "as fast as possible")
        self.stdout.write(f"publishing {len(devices)} devices to mqtt://{plan.host}:{plan.port}/{cfg.topic_root}/"
                          f"{cfg.city}/…: {what}, {plan.batch} reading(s) per message, QoS {plan.qos}, "
                          f"{options['processes']} process(es)")
        try:
            stats = run_fleet(plan, options["processes"], stop)
        except ConnectionError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(summary(stats))
        if stats.refused or stats.unacked:
            raise CommandError(f"{stats.refused} publishes refused, {stats.unacked} not acknowledged by the broker")

    def _wait_for_ingest(self, plan, cfg, timeout: float) -> None:
        self.stdout.write(f"waiting up to {timeout:g} s for an ingestion worker on {cfg.topic_root}/…")
        try:
            names = wait_for_ingest(plan.host, plan.port, cfg.topic_root, cfg.city, timeout,
                                    username=plan.username, password=plan.password)
        except IngestNotReady as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"ingestion worker(s) online: {', '.join(sorted(names))}")

    def _devices(self, cfg, options) -> list:
        if options["no_register"]:
            return fleet_devices(cfg)
        fleet = register_fleet(cfg)
        for name, layer in fleet.layers.items():
            self.stdout.write(f"{layer.slug}: {fleet.count(name)} {name} devices registered")
        return fleet.devices


def summary(stats: PublishStats) -> str:
    """One line a person (and the benchmark log) can read."""
    streams = ", ".join(f"{k} {v:,}" for k, v in sorted(stats.topics.items()))
    return (f"{stats.messages:,} messages ({stats.readings:,} readings, {stats.bytes / 1e6:.1f} MB) in "
            f"{stats.elapsed:.1f} s = {stats.rate:,.0f} msg/s; acknowledged {stats.acked:,}, refused "
            f"{stats.refused:,}, unacknowledged {stats.unacked:,}; streams: {streams}")
