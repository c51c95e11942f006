"""How to start each queue server on loopback with ``ServerProcess``; shared by the fixtures and
``bench/queue_backends.py``. Each ``start_*`` returns a server that is ready (polled, never slept
for) and fails with "run make setup" when its binary is missing.

PostgreSQL and RabbitMQ refuse to run as root: they run as their package's user through
``setpriv`` (which execs, so the pid ``ServerProcess`` holds is the server's own), on data
directories under ``/tmp`` that this user can reach (pytest's temp root is private to root).
"""

from __future__ import annotations

import base64
import glob
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.servers import ServerProcess, http_ok, require_binary

__all__ = [
    "NATS_PASSWORD",
    "NATS_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_USER",
    "RABBITMQ_PASSWORD",
    "RABBITMQ_USER",
    "REDIS_PASSWORD",
    "rabbitmq_api",
    "start_moto",
    "start_nats",
    "start_postgres",
    "start_rabbitmq",
    "start_redis",
    "stop_server",
]

REDIS_PASSWORD = "redis-pw-s3cret"
POSTGRES_USER = "updraft"
POSTGRES_PASSWORD = "pg-pw-s3cret"
NATS_USER = "updraft"
NATS_PASSWORD = "nats-pw-s3cret"
RABBITMQ_USER = "updraft"
RABBITMQ_PASSWORD = "amqp-pw-s3cret"


def _tcp_answers(port: int, send: bytes, expect: bytes) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(send)
            return expect in sock.recv(256)
    except OSError:
        return False


def data_dir(server: ServerProcess) -> Path:
    """Where a server that runs as its own user keeps its data: under /tmp, named by its port."""
    return Path(tempfile.gettempdir()) / f"updraft-{server.name}-{server.port}"


def _owned_data_dir(server: ServerProcess, user: str) -> Path:
    directory = data_dir(server)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700)
    shutil.chown(directory, user, user)
    return directory


def stop_server(server: ServerProcess) -> None:
    """Stop ``server`` (and RabbitMQ's private epmd), then remove its data directory."""
    server.stop(timeout=30)
    if server.name.startswith("rabbitmq"):
        epmd = shutil.which("epmd")
        if epmd is not None:
            kill = [epmd, "-port", str(server.ports[3]), "-kill"]
            subprocess.run(kill, check=False, capture_output=True)
    shutil.rmtree(data_dir(server), ignore_errors=True)


# -- Redis -----------------------------------------------------------------------------------


def start_redis(
    directory: Path, *, name: str = "redis", password: str | None = REDIS_PASSWORD
) -> ServerProcess:
    """``password=None``: no auth, for a KEDA `external` trigger, which forwards no
    TriggerAuthentication values and so can reach only an open Redis."""
    auth = ["--requirepass", password] if password is not None else []

    def args(ports: Sequence[int], workdir: Path) -> list[str]:
        return [
            "--bind", "127.0.0.1", "--port", str(ports[0]), "--dir", str(workdir),
            "--save", "", "--appendonly", "no", *auth,
        ]  # fmt: skip

    server = ServerProcess(name=name, binary="redis-server", args=args, directory=directory)
    server.start()
    ping = (f"AUTH {password}\r\n" if password is not None else "").encode() + b"PING\r\n"
    server.wait_ready(lambda: _tcp_answers(server.port, ping, b"+PONG"), what="answering PING")
    return server


# -- PostgreSQL ------------------------------------------------------------------------------


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.fail(f"PostgreSQL's {name} is not installed: run make setup", pytrace=False)
    return found[-1]


def _as_postgres(argv: list[str]) -> list[str]:
    return ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", *argv]


def start_postgres(directory: Path, *, name: str = "postgres") -> ServerProcess:
    """A PostgreSQL with password (scram) auth for ``POSTGRES_USER`` on 127.0.0.1 only."""
    require_binary("setpriv")
    postgres = _postgres_bin("postgres")

    def args(ports: Sequence[int], _: Path) -> list[str]:
        return _as_postgres(
            [
                postgres, "-D", str(data / "db"), "-p", str(ports[0]), "-k", str(data),
                "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
            ]
        )  # fmt: skip

    server = ServerProcess(name=name, binary="setpriv", args=args, directory=directory)
    data = _owned_data_dir(server, "postgres")
    password_file = data / "pw"
    password_file.write_text(POSTGRES_PASSWORD + "\n")
    shutil.chown(password_file, "postgres", "postgres")
    initdb = [
        _postgres_bin("initdb"), "-D", str(data / "db"), "-U", POSTGRES_USER,
        f"--pwfile={password_file}", "--auth=scram-sha-256", "--no-sync", "--encoding=UTF8",
    ]  # fmt: skip
    subprocess.run(["setpriv", *_as_postgres(initdb)], check=True, capture_output=True)
    password_file.unlink()
    server.start()
    ready = [_postgres_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(server.port), "-q"]
    server.wait_ready(lambda: subprocess.run(ready, check=False).returncode == 0)
    return server


# -- moto (SQS) ------------------------------------------------------------------------------


def start_moto(directory: Path, *, check_auth: bool = False, name: str = "") -> ServerProcess:
    binary = str(Path(sys.executable).parent / "moto_server")
    env = {"INITIAL_NO_AUTH_ACTION_COUNT": "0"} if check_auth else {}
    server = ServerProcess(
        name=name or ("moto-iam" if check_auth else "moto"),
        binary=binary,
        args=lambda ports, _: ["-H", "127.0.0.1", "-p", str(ports[0])],
        directory=directory,
        env=env,
    )
    server.start()
    server.wait_ready(lambda: http_ok(f"http://127.0.0.1:{server.port}/moto-api/data.json"))
    return server


# -- NATS with JetStream ---------------------------------------------------------------------


def start_nats(directory: Path, *, name: str = "nats") -> ServerProcess:
    def args(ports: Sequence[int], workdir: Path) -> list[str]:
        return [
            "-js", "-sd", str(workdir / "js"), "-a", "127.0.0.1", "-p", str(ports[0]),
            "-m", str(ports[1]), "--user", NATS_USER, "--pass", NATS_PASSWORD,
        ]  # fmt: skip

    server = ServerProcess(name=name, binary="nats-server", args=args, directory=directory, ports=2)
    server.start()
    health = f"http://127.0.0.1:{server.ports[1]}/healthz?js-enabled-only=true"
    server.wait_ready(lambda: http_ok(health), what="JetStream enabled")
    return server


# -- RabbitMQ --------------------------------------------------------------------------------


def rabbitmq_api(
    server: ServerProcess,
    path: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    user: str = RABBITMQ_USER,
    password: str = RABBITMQ_PASSWORD,
) -> bytes:
    """One management API call (``path`` after ``/api``); raises ``urllib.error.HTTPError``."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.ports[1]}/api{path}", data=body, method=method
    )
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=5) as response:
        data: bytes = response.read()
        return data


def _rabbitmq_up(server: ServerProcess) -> bool:
    try:
        rabbitmq_api(server, "/overview")
    except (urllib.error.URLError, OSError):
        return False
    return True


def start_rabbitmq(directory: Path, *, name: str = "rabbitmq") -> ServerProcess:
    """RabbitMQ with the management plugin; ``ports`` are AMQP, management, distribution and
    a private epmd (so stopping ours never touches anyone else's epmd)."""
    require_binary("setpriv")
    require_binary("rabbitmq-server")

    def args(ports: Sequence[int], _: Path) -> list[str]:
        amqp, management, dist, epmd = ports
        config = data / "rabbitmq.conf"
        config.write_text(
            f"listeners.tcp.default = 127.0.0.1:{amqp}\n"
            f"management.tcp.port = {management}\n"
            "management.tcp.ip = 127.0.0.1\n"
            f"default_user = {RABBITMQ_USER}\n"
            f"default_pass = {RABBITMQ_PASSWORD}\n"
            # The management API's numbers refresh this often (ms); 5 s by default.
            "collect_statistics_interval = 250\n"
            # ... and keeps samples at this granularity (s); 5 s by default.
            "management.sample_retention_policies.global.minute = 1\n"
            "management.sample_retention_policies.basic.minute = 1\n"
            "management.sample_retention_policies.detailed.10 = 1\n"
        )
        plugins = data / "enabled_plugins"
        plugins.write_text("[rabbitmq_management].\n")
        for path in (config, plugins):
            shutil.chown(path, "rabbitmq", "rabbitmq")
        # env(1) and setpriv(1) both exec, so the pid we hold is rabbitmq-server's.
        return [
            "HOME=/var/lib/rabbitmq",
            f"RABBITMQ_MNESIA_BASE={data / 'mnesia'}",
            f"RABBITMQ_LOG_BASE={data / 'log'}",
            f"RABBITMQ_NODENAME=updraft{amqp}@localhost",
            f"RABBITMQ_NODE_PORT={amqp}",
            f"RABBITMQ_DIST_PORT={dist}",
            f"ERL_EPMD_PORT={epmd}",
            f"RABBITMQ_ENABLED_PLUGINS_FILE={plugins}",
            f"RABBITMQ_CONFIG_FILE={data / 'rabbitmq'}",
            "RABBITMQ_LOGS=-",
            "setpriv", "--reuid=rabbitmq", "--regid=rabbitmq", "--init-groups", "--",
            "/usr/lib/rabbitmq/bin/rabbitmq-server",
        ]  # fmt: skip

    server = ServerProcess(name=name, binary="env", args=args, directory=directory, ports=4)
    data = _owned_data_dir(server, "rabbitmq")
    server.start()
    server.wait_ready(lambda: _rabbitmq_up(server), timeout=90, what="serving the management API")
    return server
