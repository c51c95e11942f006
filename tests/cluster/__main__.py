"""`python -m tests.cluster up|down|status`: the control plane behind `make cluster-up/down`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tests.cluster.controlplane import DEFAULT_STATE_DIR, ControlPlane, ControlPlaneError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="PKI, kubeconfigs, etcd data, logs and pids (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    cp = ControlPlane(args.state_dir)
    try:
        if args.command == "up":
            started = cp.up()
            verb = "started" if started else "already running"
            print(f"control plane {verb}: {cp.apiserver_url()}")
            print(f"  kubeconfig: {cp.kubeconfig}")
            print(f"  logs:       {cp.logs_dir}/")
            print(f"  try:        kubectl --kubeconfig {cp.kubeconfig} get --raw /readyz")
        elif args.command == "down":
            cp.down()
            print("control plane stopped")
        else:
            if not cp.is_up():
                print("control plane is not running")
                return 1
            report = {
                "apiserver": cp.apiserver_url(),
                "kubeconfig": str(cp.kubeconfig),
                "pids": cp.pids(),
                "peak_rss_kib": cp.peak_memory(),
            }
            print(json.dumps(report, indent=2))
    except ControlPlaneError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
