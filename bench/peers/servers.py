# SPDX-License-Identifier: AGPL-3.0-or-later
"""Start and stop the servers of ``bench/layers.py``: ours, tipg and pygeoapi, one worker each.

* **ours** — Django through gunicorn (``twin.wsgi``), one ``gthread`` worker
  with 8 threads, ``DEBUG`` off, default settings (tile cache in memory); for
  uncached tiles a second instance keeps its tile cache in a directory
  (``TILE_CACHE_DIR``) that the benchmark empties before every request;
* **tipg** — ``uvicorn tipg.main:app`` (one process), only ``public.bench_points``;
* **pygeoapi** — ``gunicorn pygeoapi.flask_app:APP``, the same one gthread
  worker with 8 threads as ours, PostgreSQL provider over ``bench_points``.

The peers live in their own virtualenv (``.run/peers-venv``), created or
refreshed from the pinned ``requirements.txt`` next to this file, so they
never touch the project's ``.venv``. Every server runs in its own process
group and is stopped by that group's id.
"""
from __future__ import annotations

import hashlib
import http.client
import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PEERS_VENV = REPO / ".run" / "peers-venv"
REQUIREMENTS = HERE / "requirements.txt"
THREADS = 8


@dataclass
class Server:
    """A running server: its name, port, process and log file."""

    name: str
    port: int
    process: subprocess.Popen
    log: Path
    env: dict[str, str] = field(default_factory=dict, repr=False)

    def stop(self) -> None:
        """SIGTERM the server's own process group, then SIGKILL it if it lingers."""
        if self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue


def ensure_peers_venv() -> Path:
    """The peers' virtualenv, created or refreshed when ``requirements.txt`` changed."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = PEERS_VENV / ".requirements.sha256"
    python = PEERS_VENV / "bin" / "python"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return PEERS_VENV
    print(f"installing the peers (tipg, pygeoapi) into {PEERS_VENV} ...", file=sys.stderr)
    if not python.exists():
        subprocess.run(["python3", "-m", "venv", str(PEERS_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "-r", str(REQUIREMENTS)], check=True)
    stamp.write_text(digest + "\n")
    return PEERS_VENV


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _spawn(name: str, argv: list[str], env: dict[str, str], workdir: Path, cwd: Path = REPO) -> tuple:
    log = workdir / f"{name}.log"
    process = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **env}, stdout=log.open("wb"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    return process, log


def start_ours(db_url: str, workdir: Path, tile_cache: Path | None = None, name: str = "ours",
               kind: str = "gunicorn") -> Server:
    """Our server; ``tile_cache`` switches the tile cache from per-process memory (the default) to files.

    ``kind``: ``gunicorn`` (WSGI, ``twin.wsgi``, one gthread worker) or
    ``daphne`` (ASGI, ``twin.asgi``, one process: Django runs sync views
    one at a time on its single sync thread).
    """
    if importlib.util.find_spec(kind) is None:
        raise RuntimeError(f"{kind} is missing from the project's virtualenv: .venv/bin/pip install -e '.[dev]'")
    port = free_port()
    env = {"DATABASE_URL": db_url, "DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(32),
           "ALLOWED_HOSTS": "127.0.0.1", "TILE_CACHE_DIR": str(tile_cache or ""), "LOG_LEVEL": "WARNING",
           "DJANGO_SETTINGS_MODULE": "twin.settings"}
    argv = [sys.executable, "-m", "gunicorn", "twin.wsgi:application", "--bind", f"127.0.0.1:{port}",
            "--workers", "1", "--worker-class", "gthread", "--threads", str(THREADS), "--keep-alive", "30",
            "--timeout", "120", "--log-level", "warning"]
    if kind == "daphne":
        argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0",
                "twin.asgi:application"]
    process, log = _spawn(name, argv, env, workdir)
    return Server(name, port, process, log, env)


def start_tipg(db_url: str, workdir: Path) -> Server:
    port = free_port()
    env = {"DATABASE_URL": db_url.replace("postgres://", "postgresql://", 1),
           "TIPG_DB_SCHEMAS": '["public"]', "TIPG_DB_TABLES": '["public.bench_points"]',
           "TIPG_DB_FUNCTIONS": "[]",
           # The catalogue is re-read every 5 minutes by default (ST_Extent over a view of 1M rows):
           # off, so that no measurement pays for it.
           "TIPG_CATALOG_TTL": "0", "TIPG_MAX_FEATURES_PER_QUERY": "10000"}
    argv = [str(PEERS_VENV / "bin" / "uvicorn"), "tipg.main:app", "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--no-access-log", "--log-level", "warning"]
    process, log = _spawn("tipg", argv, env, workdir, cwd=workdir)  # cwd: tipg reads a .env file from there
    return Server("tipg", port, process, log, env)


def start_pygeoapi(db: dict, workdir: Path) -> Server:
    port = free_port()
    values = {"port": port, "host": json.dumps(db["host"]), "dbport": int(db["port"]),
              "dbname": json.dumps(db["name"]), "user": json.dumps(db["user"]),
              "password": json.dumps(db["password"]) if db["password"] else "null"}
    config = workdir / "pygeoapi.config.yml"
    config.write_text(Template((HERE / "pygeoapi.config.yml").read_text()).substitute(values))
    openapi = workdir / "pygeoapi.openapi.yml"
    env = {"PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
    done = subprocess.run([str(PEERS_VENV / "bin" / "pygeoapi"), "openapi", "generate", str(config),
                           "--output-file", str(openapi)], env={**os.environ, **env}, cwd=workdir,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pygeoapi openapi generate failed:\n{done.stderr[-3000:]}")
    argv = [str(PEERS_VENV / "bin" / "gunicorn"), "pygeoapi.flask_app:APP", "--bind", f"127.0.0.1:{port}",
            "--workers", "1", "--worker-class", "gthread", "--threads", str(THREADS), "--keep-alive", "30",
            "--timeout", "120", "--log-level", "warning"]
    process, log = _spawn("pygeoapi", argv, env, workdir, cwd=workdir)
    return Server("pygeoapi", port, process, log, env)


def wait_ready(server: Server, path: str, timeout: float = 90.0) -> None:
    """Poll ``path`` until it answers 200; raise with the log's tail if the server died or hangs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            conn.request("GET", path, headers={"Accept": "application/json"})
            response = conn.getresponse()
            response.read()
            conn.close()
            if response.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    tail = server.log.read_text(errors="replace")[-3000:] if server.log.exists() else ""
    raise RuntimeError(f"{server.name} did not answer 200 on {path} (port {server.port}):\n{tail}")
