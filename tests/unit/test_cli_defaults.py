"""Every CLI default comes from the settings it fills, and both commands share the metrics flags."""

from __future__ import annotations

import pytest

from adapter.server import DEFAULT_PORT
from keda import GrpcSettings
from kube import LeaderSettings
from provisioner.controllers.manager import ProvisionerSettings
from updraft.cli import build_parser, recommend_settings
from updraft.process import METRICS_HOST, METRICS_PORT
from updraft.provision import provisioner_settings
from updraft.recommend import SizingPolicy
from updraft.serve import AdapterSettings


def test_serve_defaults_are_the_settings_defaults() -> None:
    args = build_parser().parse_args(["serve"])
    adapter = AdapterSettings()
    assert (args.bind_address, args.secure_port) == (adapter.host, adapter.port)
    assert adapter.port == DEFAULT_PORT == 6443
    assert (args.cert_dir, args.service_name, args.service_namespace) == (
        adapter.cert_dir,
        adapter.service,
        adapter.namespace,
    )
    assert (args.grpc_host, args.grpc_port) == (GrpcSettings.host, GrpcSettings.port)


def test_provisioner_defaults_are_the_settings_defaults() -> None:
    args = build_parser().parse_args(["provisioner", "--cloud-provider=kwok"])
    controller = provisioner_settings(args).controller
    defaults = ProvisionerSettings()
    assert (controller.batch_idle, controller.batch_max) == (
        defaults.batch_idle,
        defaults.batch_max,
    )
    assert controller.registration_timeout == defaults.registration_timeout
    assert (controller.lease_namespace, controller.lease_name) == (
        defaults.lease_namespace,
        defaults.lease_name,
    )
    assert controller.leader.lease_duration == LeaderSettings().lease_duration


def test_both_commands_share_the_metrics_flags() -> None:
    parser = build_parser()
    for argv in (["serve"], ["provisioner", "--cloud-provider=kwok"]):
        args = parser.parse_args(argv)
        assert (args.metrics_host, args.metrics_port) == (METRICS_HOST, METRICS_PORT)
        args = parser.parse_args([*argv, "--metrics-host=127.0.0.1", "--metrics-port=0"])
        assert (args.metrics_host, args.metrics_port) == ("127.0.0.1", 0)


def test_help_shows_the_defaults_as_a_user_types_them(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["provisioner", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "then (default: 15m)" in text
    assert "batching window (default: 1s)" in text
    assert "(default: 8080)" in text


def test_recommend_defaults_are_the_sizing_policy_defaults() -> None:
    parser = build_parser()
    args = parser.parse_args(["recommend", "--prometheus-url=http://127.0.0.1:9090"])
    settings = recommend_settings(args, parser)
    assert settings.policy == SizingPolicy()
    assert settings.query.end - settings.query.start == 7 * 86400
    assert (settings.query.step, settings.query.rate_window, settings.query.chunk) == (
        60.0,
        300.0,
        86400.0,
    )
    assert settings.output == "table"
