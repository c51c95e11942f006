"""The dashboards, their ConfigMaps and the chart's copies are what hack/gen_dashboards.py
writes (edit the table there, then run it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_generated_files_are_current() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hack.gen_dashboards", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
