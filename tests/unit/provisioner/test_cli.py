"""`updraft provisioner` flags: durations, defaults, and bad combinations named."""

from __future__ import annotations

import pytest

from updraft.cli import build_parser, main
from updraft.provision import provisioner_settings


def test_flags_become_settings() -> None:
    args = build_parser().parse_args(
        [
            "provisioner",
            "--cloud-provider=kwok",
            "--batch-idle-duration=500ms",
            "--batch-max-duration=3s",
            "--registration-timeout=2m",
            "--leader-election-lease-duration=6",
            "--metrics-port=0",
        ]
    )
    settings = provisioner_settings(args)
    assert settings.cloud_provider == "kwok"
    assert settings.metrics_port == 0
    assert settings.controller.batch_idle == 0.5
    assert settings.controller.batch_max == 3.0
    assert settings.controller.registration_timeout == 120.0
    assert settings.controller.leader.lease_duration == 6.0
    assert settings.controller.leader.renew_deadline == 4.0
    assert settings.controller.lease_namespace == "updraft-system"


def test_defaults_follow_karpenter() -> None:
    settings = provisioner_settings(
        build_parser().parse_args(["provisioner", "--cloud-provider", "kwok"])
    )
    assert (settings.controller.batch_idle, settings.controller.batch_max) == (1.0, 10.0)
    assert settings.controller.registration_timeout == 900.0
    assert settings.controller.event_repeat == 600.0


def test_bad_flags_exit_2_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "provisioner",
            "--cloud-provider=kwok",
            "--batch-idle-duration=5s",
            "--batch-max-duration=1s",
        ]
    )
    assert code == 2
    assert "--batch-idle-duration" in capsys.readouterr().err
    code = main(["provisioner", "--cloud-provider=kwok", "--event-repeat-interval=0"])
    assert code == 2
    assert "--event-repeat-interval" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["provisioner", "--cloud-provider=gcp"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(
            ["provisioner", "--cloud-provider=kwok", "--batch-max-duration=x"]
        )
