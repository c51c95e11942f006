"""The generic server-process helper; see the package docstring."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

__all__ = ["ServerProcess", "attach_log_tails", "free_port", "http_ok", "require_binary"]

_RUNNING: set[ServerProcess] = set()


def require_binary(name: str) -> str:
    """The path of ``name`` on PATH; fails (not skips) the test when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run make setup", pytrace=False)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_ok(url: str, *, timeout: float = 1.0) -> bool:
    """Whether GET ``url`` answers 2xx; connection errors are just "not yet"."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status: int = response.status
            return 200 <= status < 300
    except (urllib.error.URLError, OSError):
        return False


class ServerProcess:
    """One server binary on loopback; ``args`` builds its argv from (ports, directory)."""

    def __init__(
        self,
        *,
        name: str,
        binary: str,
        args: Callable[[Sequence[int], Path], list[str]],
        directory: Path,
        ports: int = 1,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.binary = require_binary(binary)
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ports = [free_port() for _ in range(ports)]
        self.log_path = directory / f"{name}.log"
        self._args = args
        self._env = env
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return self.ports[0]

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start (or restart on the same ports and directory); does not wait for readiness."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        argv = [self.binary, *self._args(self.ports, self.directory)]
        env = {**os.environ, **(self._env or {})}
        with self.log_path.open("ab") as log:
            log.write(f"--- start: {' '.join(argv)}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.directory
            )
        _RUNNING.add(self)

    def wait_ready(
        self, check: Callable[[], bool], *, timeout: float = 30.0, what: str = ""
    ) -> None:
        """Poll ``check`` until it is true; fail with the log tail on timeout or exit."""
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            if self._process is not None and self._process.poll() is not None:
                self.fail(f"exited with code {self._process.returncode} before {what or 'ready'}")
            if check():
                return
            if time.monotonic() > deadline:
                self.fail(f"not {what or 'ready'} after {timeout:g}s")
            time.sleep(delay)  # polling, not waiting for a guess: the check decides
            delay = min(delay * 2, 0.25)

    def stop(self, *, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code once the process is
        gone (None when it was not running)."""
        process, self._process = self._process, None
        _RUNNING.discard(self)
        if process is None:
            return None
        if process.poll() is not None:
            return process.returncode
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()

    def kill(self) -> None:
        """SIGKILL now: the server vanishes the way a crashed one does."""
        process, self._process = self._process, None
        _RUNNING.discard(self)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def fail(self, why: str) -> None:
        tail = self.log_tail()
        self.stop()
        pytest.fail(f"{self.name} {why}; last lines of {self.log_path}:\n{tail}", pytrace=False)

    def __repr__(self) -> str:
        return f"<ServerProcess {self.name} ports={self.ports}>"


def attach_log_tails(report: pytest.TestReport) -> None:
    """For a ``pytest_runtest_makereport`` wrapper: a failed report gets every running server's
    log tail as a section (pytest prints sections of failed tests)."""
    if not report.failed:
        return
    for server in sorted(_RUNNING, key=lambda s: s.name):
        report.sections.append((f"{server.name} log tail ({server.log_path})", server.log_tail()))
