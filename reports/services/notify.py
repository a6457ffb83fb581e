# SPDX-License-Identifier: AGPL-3.0-or-later
"""Telling citizens about their report: an outbox table and pluggable senders.

A status change queues a :class:`~reports.models.Notification` in the same
transaction (so a rolled-back change tells nobody). ``twin send-notifications``
(or :func:`send_pending`) hands pending rows to the sender registered for
their channel and records the result per row, so a retry only re-sends what
failed. The address is read from the confidential reporter row at send
time and never copied into the outbox, logs or events.

Senders: ``email`` (Django's email backend: SMTP in production, the
locmem/console backend in tests and development) and ``sms``: the HTTP
gateway of :mod:`reports.services.sms_gateway` when one is configured
(``REPORTS_SMS_GATEWAY`` or ``REPORTS_SMS_URL``…), otherwise the
``blackhole`` default that records the message as sent to nobody; any other
sender plugs in with :func:`register`.

A failed send stays in the outbox as ``failed`` with its error, its attempt
count and ``next_attempt_at``: retries back off (1, 2, 4, 8 minutes …, at most
an hour) up to ``MAX_ATTEMPTS``; after that the row is kept, never dropped,
for an operator to look at (``twin send-notifications --retry-exhausted``).
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from reports.models import ContactChannel, Notification, Report, Reporter

logger = logging.getLogger(__name__)

Sender = Callable[[Reporter, Notification], None]
_SENDERS: dict[str, Sender] = {}
MAX_ATTEMPTS = 5
BACKOFF_FIRST_S, BACKOFF_MAX_S = 60, 3600

STATUS_TEXT = {
    "received": ("đã được tiếp nhận", "has been received"),
    "verified": ("đã được xác minh", "has been verified"),
    "assigned": ("đã được chuyển đến cơ quan xử lý", "has been passed to the responsible agency"),
    "in_progress": ("đang được xử lý", "is being handled"),
    "resolved": ("đã được xử lý xong", "has been resolved"),
    "rejected": ("không được tiếp nhận xử lý", "was not taken up"),
}


def email_sender(reporter: Reporter, note: Notification) -> None:
    send_mail(note.subject, note.body, getattr(settings, "DEFAULT_FROM_EMAIL", None), [reporter.email])


def blackhole_sender(reporter: Reporter, note: Notification) -> None:
    """Development default for SMS: accept and drop."""


def register(channel: str, sender: Sender) -> None:
    _SENDERS[channel] = sender


def register_builtin_senders() -> None:
    """Email through Django; SMS through the configured HTTP gateway, else the black hole."""
    from pydantic import ValidationError

    from reports.services.sms_gateway import HttpSmsSender, config_from_settings

    _SENDERS.clear()
    register(ContactChannel.EMAIL, email_sender)
    try:
        gateway = config_from_settings()
    except (ValidationError, ValueError) as exc:
        raise ImproperlyConfigured(f"REPORTS_SMS_GATEWAY / REPORTS_SMS_* is invalid: {exc}") from None
    register(ContactChannel.SMS, HttpSmsSender(gateway) if gateway else blackhole_sender)
    if gateway:
        logger.info("SMS notifications go to the gateway at %s", gateway.url.host)


@contextlib.contextmanager
def registered(channel: str, sender: Sender) -> Iterator[None]:
    previous = _SENDERS.get(channel)
    register(channel, sender)
    try:
        yield
    finally:
        if previous is None:
            _SENDERS.pop(channel, None)
        else:
            _SENDERS[channel] = previous


def message_for(report: Report) -> tuple[str, str]:
    vi, en = STATUS_TEXT.get(report.status, (report.status, report.status))
    subject = f"Phản ánh #{report.pk} {vi} / Report #{report.pk} {en}"
    lines = [f"Phản ánh #{report.pk} ({report.category.name_vi}) {vi}.",
             f"Report #{report.pk} ({report.category.name_en}) {en}."]
    if report.agency_id:
        lines.append(f"Cơ quan xử lý / Agency: {report.agency.name_vi}")
    if report.status == "resolved" and report.result_text:
        lines.append(f"Kết quả / Result: {report.result_text}")
    if report.status == "rejected" and report.reject_reason:
        lines.append(f"Lý do / Reason: {report.reject_reason}")
    lines.append(f"Mã tra cứu / Token: {report.token}")
    return subject, "\n".join(lines)


def queue(report: Report, channel: str | None = None) -> Notification | None:
    """Queue a message about the report's current status, if the reporter asked for them."""
    if channel is None:
        channel = Reporter.objects.filter(report=report).values_list("contact", flat=True).first()
    if not channel or channel == ContactChannel.NONE:
        return None
    subject, body = message_for(report)
    return Notification.objects.create(report=report, channel=channel, status=report.status, subject=subject,
                                       body=body)


def backoff(attempts: int) -> timedelta:
    """Wait before the next try after ``attempts`` failures: 1, 2, 4 … minutes, at most an hour.

    >>> [int(backoff(n).total_seconds()) for n in (1, 2, 3, 7, 20)]
    [60, 120, 240, 3600, 3600]
    """
    return timedelta(seconds=min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** min(attempts - 1, 20)))


def _due(now: datetime, retry_exhausted: bool):
    from django.db.models import Q

    rows = Notification.objects.filter(state__in=[Notification.State.PENDING, Notification.State.FAILED])
    if not retry_exhausted:
        rows = rows.filter(attempts__lt=MAX_ATTEMPTS)
    return rows.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))


def _scrubbed(error: str, reporter: Reporter | None) -> str:
    """The error text without the reporter's phone or email, whatever a sender put in it."""
    for secret in ((reporter.phone, reporter.email) if reporter else ()):
        if secret:
            error = error.replace(secret, "…")
    return error[:2000]


def send_pending(limit: int = 500, *, now: datetime | None = None, retry_exhausted: bool = False) -> tuple[int, int]:
    """Send the pending messages and the failed ones whose back-off is over; returns ``(sent, failed)``.

    ``retry_exhausted`` also tries rows that used up their ``MAX_ATTEMPTS``.
    """
    now = now or timezone.now()
    sent = failed = 0
    ids = list(_due(now, retry_exhausted).order_by("created_at", "id").values_list("id", flat=True)[:limit])
    for note_id in ids:
        with transaction.atomic():
            note = Notification.objects.select_for_update(skip_locked=True).filter(pk=note_id).first()
            if note is None or note.state == Notification.State.SENT:
                continue
            reporter = Reporter.objects.filter(report_id=note.report_id).first()
            sender = _SENDERS.get(note.channel)
            note.attempts += 1
            try:
                if reporter is None or sender is None:
                    raise LookupError(f"no reporter contact or no sender for channel {note.channel}")
                sender(reporter, note)
            except Exception as exc:  # a sender failure is recorded per message, never fatal, never lost
                note.state, note.last_error = Notification.State.FAILED, _scrubbed(f"{type(exc).__name__}: {exc}",
                                                                                  reporter)
                note.next_attempt_at = now + backoff(note.attempts)
                failed += 1
                logger.warning("notification %s for report %s failed (attempt %d, next after %s): %s", note.pk,
                               note.report_id, note.attempts, note.next_attempt_at.isoformat(timespec="seconds"),
                               type(exc).__name__)
            else:
                note.state, note.sent_at, note.last_error = Notification.State.SENT, timezone.now(), ""
                note.next_attempt_at = None
                sent += 1
            note.save(update_fields=["state", "attempts", "last_error", "sent_at", "next_attempt_at"])
    return sent, failed
