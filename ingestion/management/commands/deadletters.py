# SPDX-License-Identifier: AGPL-3.0-or-later
"""``twin deadletters list|show|replay [--reason R] [--id ID ...]``: refused messages.

``list`` shows dead letters not yet replayed successfully (``--all`` for
every one); ``show`` prints one with its raw payload; ``replay`` feeds the
stored bytes through the live parse path again (after registering the
missing device, fixing the city extent ...) and records each outcome.
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from pydantic import ValidationError

from ingestion.deadletter import list_dead_letters, replay_dead_letters
from ingestion.models import DeadLetter


class Command(BaseCommand):
    help = "List, show and replay dead letters (refused ingestion messages)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["list", "show", "replay"])
        parser.add_argument("--reason", help="Only this reason (unknown_device, invalid_payload, ...).")
        parser.add_argument("--id", dest="ids", type=int, action="append", help="Only this id (repeatable).")
        parser.add_argument("--topic-prefix", help="Only topics starting with this.")
        parser.add_argument("--all", action="store_true", help="list: include those already replayed.")
        parser.add_argument("--limit", type=int, default=50, help="list: how many (default 50).")
        parser.add_argument("--config", help="replay: ingestion TOML configuration (topic root, limits).")
        parser.add_argument("--no-rules", action="store_true", help="replay: store without running the rules.")

    def handle(self, *args, action: str, **options) -> None:
        letters = list_dead_letters(reason=options["reason"], ids=options["ids"],
                                    topic_prefix=options["topic_prefix"], include_replayed=options["all"])
        if action == "list":
            self._list(letters[:max(options["limit"], 0)], letters.count())
        elif action == "show":
            if not options["ids"]:
                raise CommandError("show needs --id")
            for letter in DeadLetter.objects.filter(pk__in=options["ids"]).order_by("pk"):
                self._show(letter)
        else:
            self._replay(letters, options)

    def _list(self, letters, total: int) -> None:
        self.stdout.write(f"{total} dead letter(s)")
        for letter in letters:
            state = f"  [{letter.replay_result}]" if letter.replay_result else ""
            self.stdout.write(f"{letter.pk:>8}  {letter.received_at:%Y-%m-%d %H:%M:%S%z}  {letter.reason:<18} "
                              f"{letter.topic}  {letter.payload_size} B  {letter.detail[:120]}{state}")

    def _show(self, letter: DeadLetter) -> None:
        payload = bytes(letter.payload)
        self.stdout.write(f"id:          {letter.pk}\ntopic:       {letter.topic}\nreason:      {letter.reason}\n"
                          f"detail:      {letter.detail}\nreceived at: {letter.received_at.isoformat()}\n"
                          f"size:        {letter.payload_size} bytes ({len(payload)} kept)\n"
                          f"replayed:    {letter.replayed_at or '-'} {letter.replay_result}")
        self.stdout.write("payload:     " + payload.decode("utf-8", "backslashreplace")[:8192])

    def _replay(self, letters, options) -> None:
        from ingestion.config import load_config
        from ingestion.sink import default_rules_hook

        if not options["ids"] and not options["reason"] and not options["topic_prefix"]:
            self.stderr.write("replaying every pending dead letter")
        try:
            cfg = load_config(options["config"])
        except (ValidationError, ValueError, OSError) as exc:
            raise CommandError(f"invalid ingestion configuration: {exc}") from None
        rules = None if options["no_rules"] else default_rules_hook()
        report = replay_dead_letters(letters, cfg=cfg, rules=rules)
        for pk, result in sorted(report.results.items()):
            self.stdout.write(f"{pk:>8}  {result}")
        self.stdout.write(f"replayed {len(report.results)}: {report.stored} stored ({report.readings} readings), "
                          f"{report.failed} still refused")
