"""`updraft`: the console script. Subcommands arrive with the components they run
(`serve` with the metrics adapter and the KEDA scaler, `provisioner` with the provisioner)."""

from __future__ import annotations

import argparse
import sys

from updraft import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="updraft",
        description="Kubernetes autoscaling: external/custom metrics API, KEDA external scaler, "
        "node provisioner.",
    )
    parser.add_argument("--version", action="version", version=f"updraft {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
