"""``bench.disruption`` runs end to end on a tiny cluster and reports what it promises.

Run as `make bench` runs it (``python -m``, a subprocess: nothing imports ``bench``); no
figure is asserted on, speed lives in the benchmark itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def run_disruption_bench(*args: str) -> dict[str, Any]:
    """``python -m bench.disruption ARGS`` as `make bench` runs it; its JSON report."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.disruption", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    report: dict[str, Any] = json.loads(out.stdout)
    return report


def test_the_disruption_bench_runs_tiny() -> None:
    report = run_disruption_bench("--nodes", "4", "--pods-per-node", "3", "--repeat", "1")
    assert report["benchmark"] == "disruption"
    assert report["nodes"] == 4
    assert report["pods"] == 12
    decision = report["decision"]
    for key in ("baseline_cpu_ms", "first_pass_cpu_ms", "settled_pass_cpu_ms"):
        assert decision[key] > 0
    assert decision["first_command"]  # the wasteful cluster always has something to do
    pools = [c["pool"] for c in report["cost"]]
    assert pools == ["all-types-spot-and-on-demand", "c-m-r-on-demand"]
    for cost in report["cost"]:
        assert cost["commands"]
        assert cost["price_after"] < cost["price_before"]
        assert abs(cost["ratio_to_fresh"] - cost["price_after"] / cost["fresh_price"]) < 0.002
