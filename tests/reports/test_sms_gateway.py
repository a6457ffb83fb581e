# SPDX-License-Identifier: AGPL-3.0-or-later
"""SMS notifications through the HTTP gateway channel, against a real local HTTP server.

The server is our own stand-in for a third-party SMS provider (started here on
127.0.0.1, a real socket and real HTTP); nothing of CityTwin is mocked.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from reports.models import Notification
from reports.services import notify
from reports.services.intake import ReportDraft, ReporterInfo, file_report
from reports.services.sms_gateway import HttpSmsConfig, HttpSmsSender, SmsGatewayError
from tests.reports.conftest import SECRET, inside, ward

TOKEN = "sms-token-for-tests"


class Provider:
    """A small SMS provider: records each POST, answers with the statuses it is told to (then 200)."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.answers: list[int] = []
        self.delay_s = 0.0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", 0))
                provider.received.append({"path": self.path, "headers": dict(self.headers),
                                          "body": json.loads(self.rfile.read(length))})
                time.sleep(provider.delay_s)
                status = provider.answers.pop(0) if provider.answers else 200
                body = json.dumps({"to": provider.received[-1]["body"]["to"], "status": status}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)       # echoes the number, as real providers do

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/sms"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider():
    running = Provider()
    yield running
    running.close()


@pytest.fixture
def gateway(provider, settings):
    """The channel registry built from settings, as at start-up, pointing at the provider."""
    settings.REPORTS_SMS_GATEWAY = {"url": provider.url, "token": TOKEN, "sender": "HueS", "timeout_s": 1.0}
    notify.register_builtin_senders()
    yield provider
    del settings.REPORTS_SMS_GATEWAY
    notify.register_builtin_senders()


def sms_report(hue_area=None):
    lon, lat = inside(hue_area or ward())
    return file_report(ReportDraft(category="littering", lon=lon, lat=lat, description="Rác tồn đọng",
                                   reporter=ReporterInfo(name=SECRET["name"], phone=SECRET["phone"],
                                                         contact="sms"))).report


@pytest.mark.django_db
def test_status_messages_are_posted_as_json_to_the_configured_gateway(hue, gateway, caplog):
    caplog.set_level(logging.DEBUG)
    report = sms_report()
    assert notify.send_pending() == (1, 0)
    [request] = gateway.received
    assert request["path"] == "/v1/sms"
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert request["headers"]["Content-Type"].startswith("application/json")
    note = Notification.objects.get(report=report)
    assert request["headers"]["Idempotency-Key"] == f"citytwin-notification-{note.pk}"
    assert request["body"] == {"to": SECRET["phone"], "from": "HueS", "text": note.body,
                               "reference": f"citytwin-notification-{note.pk}"}
    assert f"#{report.pk}" in request["body"]["text"] and SECRET["name"] not in request["body"]["text"]
    assert note.state == "sent" and note.attempts == 1 and note.sent_at and note.next_attempt_at is None
    assert SECRET["phone"] not in caplog.text


@pytest.mark.django_db
def test_a_refusing_gateway_backs_off_records_the_attempts_and_delivers_later(hue, gateway, caplog):
    caplog.set_level(logging.DEBUG)
    gateway.answers = [503, 429]
    report = sms_report()
    start = timezone.now()
    assert notify.send_pending(now=start) == (0, 1)
    note = Notification.objects.get(report=report)
    assert (note.state, note.attempts) == ("failed", 1)
    assert "HTTP 503" in note.last_error and SECRET["phone"] not in note.last_error
    assert note.next_attempt_at == start + notify.backoff(1)
    assert notify.send_pending(now=start) == (0, 0)                       # not before its back-off
    assert len(gateway.received) == 1
    assert notify.send_pending(now=note.next_attempt_at) == (0, 1)        # second try: 429
    note.refresh_from_db()
    assert note.attempts == 2 and "HTTP 429" in note.last_error
    assert note.next_attempt_at - start >= notify.backoff(1) + notify.backoff(2) - timedelta(seconds=1)
    assert notify.send_pending(now=note.next_attempt_at) == (1, 0)        # third: accepted
    note.refresh_from_db()
    assert (note.state, note.attempts, note.last_error) == ("sent", 3, "")
    assert [r["body"]["reference"] for r in gateway.received] == [f"citytwin-notification-{note.pk}"] * 3
    assert SECRET["phone"] not in caplog.text


@pytest.mark.django_db
def test_a_gateway_that_never_answers_times_out_and_the_message_is_kept(hue, gateway, caplog):
    caplog.set_level(logging.DEBUG)
    gateway.delay_s = 3.0                         # longer than timeout_s = 1
    report = sms_report()
    started = time.monotonic()
    assert notify.send_pending() == (0, 1)
    assert time.monotonic() - started < 2.5
    note = Notification.objects.get(report=report)
    assert note.state == "failed" and "did not answer within 1 s" in note.last_error
    # Used up all its attempts: kept in the outbox (never dropped), sent on an explicit retry.
    Notification.objects.filter(pk=note.pk).update(attempts=notify.MAX_ATTEMPTS, next_attempt_at=None)
    gateway.delay_s = 0.0
    assert notify.send_pending() == (0, 0)
    assert notify.send_pending(retry_exhausted=True) == (1, 0)
    assert Notification.objects.get(pk=note.pk).state == "sent"
    assert SECRET["phone"] not in caplog.text


@pytest.mark.django_db
def test_an_unreachable_gateway_is_a_recorded_failure_without_the_number(hue, settings):
    with socket_closed_port() as port:
        sender = HttpSmsSender(HttpSmsConfig(url=f"http://127.0.0.1:{port}/sms", token=TOKEN, timeout_s=1))
        report = sms_report()
        with notify.registered("sms", sender):
            assert notify.send_pending() == (0, 1)
    note = Notification.objects.get(report=report)
    assert "could not be reached" in note.last_error and SECRET["phone"] not in note.last_error


def test_the_gateway_is_configured_from_the_environment_with_the_token_from_a_variable(settings, monkeypatch,
                                                                                        provider):
    from reports.services.sms_gateway import config_from_settings

    if hasattr(settings, "REPORTS_SMS_GATEWAY"):
        del settings.REPORTS_SMS_GATEWAY
    monkeypatch.setenv("REPORTS_SMS_URL", provider.url)
    monkeypatch.setenv("CT_TEST_SMS_SECRET", "from-env")
    monkeypatch.setenv("REPORTS_SMS_TOKEN", "${CT_TEST_SMS_SECRET}")
    monkeypatch.setenv("REPORTS_SMS_SENDER", "HueIOC")
    cfg = config_from_settings()
    assert (str(cfg.url), cfg.token, cfg.sender) == (provider.url, "from-env", "HueIOC")
    assert "from-env" not in repr(cfg)
    monkeypatch.delenv("REPORTS_SMS_URL")
    assert config_from_settings() is None                       # no URL: the black hole stays


def test_a_bad_gateway_setting_stops_start_up_with_a_clear_error(settings):
    settings.REPORTS_SMS_GATEWAY = {"url": "not a url", "sender": "x"}
    try:
        with pytest.raises(ImproperlyConfigured, match="REPORTS_SMS_GATEWAY"):
            notify.register_builtin_senders()
        settings.REPORTS_SMS_GATEWAY = {"url": "http://127.0.0.1:9/sms", "unknown": 1}
        with pytest.raises(ImproperlyConfigured, match="unknown"):
            notify.register_builtin_senders()
    finally:
        del settings.REPORTS_SMS_GATEWAY
        notify.register_builtin_senders()


def test_a_reporter_without_a_phone_is_a_sender_error():
    from reports.models import Reporter

    sender = HttpSmsSender(HttpSmsConfig(url="http://127.0.0.1:9/sms"))
    with pytest.raises(SmsGatewayError, match="no phone"):
        sender(Reporter(phone=""), Notification(pk=1, report_id=1, body="x"))


class socket_closed_port:
    """A local port with nothing listening (bound, then closed)."""

    def __enter__(self) -> int:
        import socket

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        return self.port

    def __exit__(self, *exc) -> None:
        return None
