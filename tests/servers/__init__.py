"""Real servers on loopback for integration tests: start, wait until ready, stop, show the log.

``ServerProcess`` runs one binary on free loopback ports with its own temp directory and a log
file; ``wait_ready`` polls a caller's check (never a fixed sleep) and fails with the log tail;
``stop`` terminates, then kills. ``attach_log_tails`` (a pytest report hook, imported into a
conftest) adds the log tail of every running server to a failed test's report. A missing binary
fails the test with "run make setup", never skips it.
"""

from tests.servers.process import (
    ServerProcess,
    attach_log_tails,
    free_port,
    http_ok,
    require_binary,
)

__all__ = ["ServerProcess", "attach_log_tails", "free_port", "http_ok", "require_binary"]
