# SPDX-License-Identifier: AGPL-3.0-or-later
"""The adapter contract (after frigate's ``comms/base_communicator.py``).

An adapter only turns raw transport messages into :class:`Delivery` objects
(parsed payload or refusal, plus how to acknowledge the message) and hands
them to ``sink``. It never touches models: the sink stores, then calls the
delivery's ``ack``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from ingestion.config import IngestConfig
from ingestion.sink import Delivery


class Adapter(ABC):
    def __init__(self, cfg: IngestConfig, sink: Callable[[Delivery], None]) -> None:
        self.cfg = cfg
        self.sink = sink

    @abstractmethod
    def start(self) -> None:
        """Begin receiving (non-blocking: the transport runs in its own thread)."""

    @abstractmethod
    def stop(self) -> None:
        """Stop receiving; messages not yet acknowledged are redelivered later."""


__all__ = ["Adapter"]
