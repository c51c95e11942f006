"""What a new user hits first: `updraft serve` / `updraft provisioner` that cannot start exit
with status 2 and one line on stderr naming the flag or the cause; no traceback, no leaked
aiohttp session. Real processes, real sockets, no cluster (a dead apiserver is a closed port)."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.process import free_port
from tests.servers.updraft import UPDRAFT, grpc_serve

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "standalone.yaml"
PROVISIONER = ["provisioner", "--cloud-provider=kwok", "--metrics-port=0"]
COMMANDS = ["serve", "provisioner"]


def _env(**changes: str | None) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")
    }
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def fails_with_one_line(args: list[str], *, env: dict[str, str] | None = None) -> str:
    """Run `updraft ARGS`; assert exit status 2 and exactly one stderr line; return it."""
    done = subprocess.run(
        [UPDRAFT, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env if env is not None else _env(),
    )
    lines = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "Unclosed" not in done.stderr
    return lines[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else listens on (as another process would)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _serve_metrics_api(tmp_path: Path, port: int) -> list[str]:
    return [
        "serve",
        "--grpc-port=0",
        "--metrics-port=0",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={tmp_path / 'serving'}",
    ]


def _cluster_command(command: str, tmp_path: Path) -> list[str]:
    """The command, in the mode that needs a cluster: for `serve`, the metrics API on."""
    if command == "serve":
        return _serve_metrics_api(tmp_path, free_port())
    return PROVISIONER


def _dead_kubeconfig(tmp_path: Path) -> Path:
    """A kubeconfig whose apiserver address nothing listens on."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: dead
  cluster: {{server: "https://127.0.0.1:{free_port()}", insecure-skip-tls-verify: true}}
users:
- name: someone
  user: {{token: not-a-real-token}}
contexts:
- name: dead
  context: {{cluster: dead, user: someone}}
current-context: dead
"""
    )
    return path


def test_a_second_serve_on_the_same_grpc_port_exits_2(tmp_path: Path) -> None:
    first = grpc_serve(tmp_path / "first", name="updraft-first")
    try:
        line = fails_with_one_line(
            [
                "serve",
                "--grpc-host=127.0.0.1",
                f"--grpc-port={first.port}",
                "--grpc-plaintext",
                "--metrics-port=0",
                "--secure-port=0",
            ]
        )
        assert line.startswith(f"updraft serve: --grpc-port {first.port}: ")
        assert "in use" in line
        assert first.running  # the first one is untouched
    finally:
        first.stop()


def test_a_taken_secure_port_exits_2(tmp_path: Path, taken_port: int) -> None:
    line = fails_with_one_line(
        [
            *_serve_metrics_api(tmp_path, taken_port),
            f"--standalone-config={DEMO}",
            "--insecure-no-auth",
        ]
    )
    assert line.startswith(f"updraft serve: --secure-port {taken_port}: ")
    assert "in use" in line


@pytest.mark.parametrize("command", [["serve", "--grpc-port=0", "--secure-port=0"], PROVISIONER])
def test_a_taken_metrics_port_exits_2(tmp_path: Path, taken_port: int, command: list[str]) -> None:
    args = [a for a in command if not a.startswith("--metrics-port")]
    if command is PROVISIONER:
        args.append(f"--kubeconfig={_dead_kubeconfig(tmp_path)}")
        args.append("--apiserver-wait=60s")  # the port fails first; the wait must not matter
    line = fails_with_one_line([*args, "--metrics-host=127.0.0.1", f"--metrics-port={taken_port}"])
    assert f": --metrics-port {taken_port}: " in line
    assert "in use" in line


@pytest.mark.parametrize("command", COMMANDS)
def test_no_cluster_credentials_exit_2(tmp_path: Path, command: str) -> None:
    line = fails_with_one_line(_cluster_command(command, tmp_path))
    assert line.startswith(f"updraft {command}: ")
    assert "in-cluster service account" in line
    assert "--kubeconfig" in line
    assert "$KUBECONFIG" in line


@pytest.mark.parametrize("command", COMMANDS)
def test_a_dead_apiserver_is_retried_then_exits_2(tmp_path: Path, command: str) -> None:
    kubeconfig = _dead_kubeconfig(tmp_path)
    line = fails_with_one_line(
        [*_cluster_command(command, tmp_path), f"--kubeconfig={kubeconfig}", "--apiserver-wait=1s"]
    )
    assert line.startswith(f"updraft {command}: the apiserver at https://127.0.0.1:")
    assert "did not answer within 1s" in line
    assert "attempts" in line


@pytest.mark.parametrize("command", COMMANDS)
def test_kubeconfig_env_is_honoured(tmp_path: Path, command: str) -> None:
    """`$KUBECONFIG` as kubectl reads it: colon-separated, the first existing file is used."""
    kubeconfig = _dead_kubeconfig(tmp_path)
    args = _cluster_command(command, tmp_path)
    env = _env(KUBECONFIG=f"{tmp_path / 'missing'}:{kubeconfig}")
    line = fails_with_one_line([*args, "--apiserver-wait=0s"], env=env)
    assert "did not answer" in line  # it went to the kubeconfig's apiserver, not in-cluster
    line = fails_with_one_line(args, env=_env(KUBECONFIG=str(tmp_path / "missing")))
    assert "$KUBECONFIG=" in line
    assert "no such file" in line


@pytest.mark.parametrize("command", [["serve"], ["provisioner", "--cloud-provider=kwok"]])
def test_a_port_that_is_not_a_number_is_named(command: list[str]) -> None:
    line = fails_with_one_line([*command, "--metrics-port=abc"])
    assert "--metrics-port: 'abc' is not a port (an integer 0-65535)" in line
    if command == ["serve"]:
        line = fails_with_one_line(["serve", "--secure-port=abc"])
        assert "--secure-port: 'abc' is not a port (an integer 0-65535)" in line
