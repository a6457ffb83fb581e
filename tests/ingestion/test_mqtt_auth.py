# SPDX-License-Identifier: AGPL-3.0-or-later
"""Device authentication at the broker: the project's own Mosquitto template, a password file and ACL from the DB.

The broker is started from ``docker/mosquitto.conf.in`` (both listeners) on
free ports in a temporary directory, so what is tested is what
``scripts/services.sh`` runs.
"""
from __future__ import annotations

import io
import json
import os
import signal
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from django.conf import settings
from django.core.management import call_command

from ingestion.broker_auth import issue_device_login, mosquitto_hash, render_broker_files
from tests.ingestion.mqtt_support import (ThrowawayBroker, air, base_time, broker, devices,  # noqa: F401
                                          free_port, in_thread, start_worker, unique_name, wait_for, worker_config)
from twin.models import DeviceCredential, Feature

pytestmark = pytest.mark.django_db


class ProjectBroker(ThrowawayBroker):
    """The project's Mosquitto configuration, rendered as services.sh renders it."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.device_port = free_port()
        for name in ("passwd", "acl"):
            if not (directory / name).exists():
                (directory / name).touch(mode=0o600)
        template = (Path(settings.BASE_DIR) / "docker" / "mosquitto.conf.in").read_text()
        text = (template.replace("@PORT@", str(self.port)).replace("@DIR@", str(directory))
                .replace("@DEVICE_PORT@", str(self.device_port)).replace("@DEVICE_BIND@", "127.0.0.1")
                .replace("@USER_LINE@", "user root" if os.geteuid() == 0 else ""))
        self.config.write_text(text)

    @property
    def device_url(self) -> str:
        return f"mqtt://127.0.0.1:{self.device_port}"


def _connect(port: int, username: str | None, password: str | None) -> tuple[mqtt.Client, mqtt.ReasonCode]:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique_name("dev"), protocol=mqtt.MQTTv5)
    if username is not None:
        client.username_pw_set(username, password)
    result: list = []
    client.on_connect = lambda c, u, f, rc, p: result.append(rc)
    client.connect("127.0.0.1", port)
    client.loop_start()
    wait_for(lambda: result, timeout=10, what="CONNACK")
    return client, result[0]


def _publish(client: mqtt.Client, topic: str, payload: dict) -> None:
    info = client.publish(topic, json.dumps(payload), qos=1)
    info.wait_for_publish(10)


def test_mosquitto_accepts_our_password_hashes(tmp_path):
    (tmp_path / "passwd").write_text(f"alice:{mosquitto_hash('s3cret')}\n")
    mosquitto = ProjectBroker(tmp_path).start()
    try:
        assert _login_works(mosquitto.device_port, "alice", "s3cret")
        assert not _login_works(mosquitto.device_port, "alice", "wrong")
        assert _login_works(mosquitto.port, None, None)      # the loopback listener stays anonymous
    finally:
        mosquitto.stop()


def test_devices_publish_only_under_their_own_topic_with_their_own_secret(devices, start_worker, tmp_path,
                                                                          monkeypatch):
    mosquitto = ProjectBroker(tmp_path).start()
    ingest_password = uuid.uuid4().hex
    monkeypatch.setenv("CITYTWIN_MQTT_INGEST_PASSWORD", ingest_password)
    try:
        def issue():
            feature = Feature.objects.get(pk=devices.sensor(0))
            return issue_device_login(feature, client_id=unique_name("cred"))

        credential, secret = in_thread(issue)
        out = io.StringIO()
        in_thread(call_command, "mqtt_passwords", "--passwd", str(tmp_path / "passwd"), "--acl",
                  str(tmp_path / "acl"), "--pid-file", str(tmp_path / "mosquitto.pid"), "--topic-root", devices.root,
                  stdout=out, stderr=io.StringIO())
        assert "1 device login(s)" in out.getvalue()
        mosquitto.process.send_signal(signal.SIGHUP)   # in case the broker wrote no pid file
        # The worker itself logs in on the device listener with the ingest account.
        cfg = worker_config(devices.root, unique_name(), url=mosquitto.device_url,
                            broker={"username": "ingest", "password": "${CITYTWIN_MQTT_INGEST_PASSWORD}"})
        wait_for(lambda: _login_works(mosquitto.device_port, "ingest", ingest_password), what="the reload")
        start_worker(cfg)

        device, code = _connect(mosquitto.device_port, credential.client_id, secret)
        assert not code.is_failure
        moment = base_time()
        _publish(device, devices.topic("sensor", "s1", "air"), air(moment, pm25=1))     # someone else's topic
        _publish(device, devices.topic("sensor", "s0", "air"), air(moment, pm25=2))     # its own
        device.disconnect()
        wait_for(lambda: devices.observations(), what="the device's own reading")
        assert devices.observations() == [(devices.sensor(0), moment)]

        assert not _login_works(mosquitto.device_port, credential.client_id, "not-the-secret")
        assert not _login_works(mosquitto.device_port, None, None)           # no anonymous devices
        in_thread(lambda: DeviceCredential.objects.filter(pk=credential.pk).update(active=False))
        in_thread(call_command, "mqtt_passwords", "--passwd", str(tmp_path / "passwd"), "--acl", str(tmp_path / "acl"),
                  "--pid-file", str(tmp_path / "mosquitto.pid"), "--topic-root", devices.root,
                  stdout=io.StringIO(), stderr=io.StringIO())
        wait_for(lambda: not _login_works(mosquitto.device_port, credential.client_id, secret),
                 what="the deactivated device to be refused")
    finally:
        mosquitto.stop()


def _login_works(port: int, username: str | None, password: str | None) -> bool:
    try:
        client, code = _connect(port, username, password)
    except Exception:
        return False
    client.disconnect()
    client.loop_stop()
    return not code.is_failure


def test_the_acl_names_each_device_topic_and_the_ingest_account(devices):
    def issue():
        return issue_device_login(Feature.objects.get(pk=devices.ids[("boat", "b0")]), client_id=unique_name("b"))

    credential, _ = in_thread(issue)
    files = in_thread(render_broker_files, devices.root, "pw")
    assert f"user {credential.client_id}\ntopic write {devices.root}/hue/boat/b0/+" in files.acl
    assert f"user ingest\ntopic read {devices.root}/#" in files.acl
    assert files.passwd.count("\n") == files.devices + 1
