"""When an existing serving pair is still good enough to keep (what `updraft certs` reuses)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from adapter import issue_serving_pair, serving_pair_problem

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def test_a_fresh_pair_serves_its_service() -> None:
    pair = issue_serving_pair(service="updraft", namespace="updraft-system", now=NOW)
    assert (
        serving_pair_problem(pair, service="updraft", namespace="updraft-system", now=NOW) is None
    )


def test_another_service_expiry_a_foreign_key_or_ca_are_problems() -> None:
    pair = issue_serving_pair(service="updraft", namespace="updraft-system", now=NOW)
    other = issue_serving_pair(service="updraft", namespace="updraft-system", now=NOW)
    problem = serving_pair_problem(pair, service="updraft", namespace="elsewhere", now=NOW)
    assert problem == "tls.crt does not name updraft.elsewhere.svc"
    # Renewed before the last tenth of its life, not at expiry.
    late = NOW + dt.timedelta(days=330)
    late_problem = serving_pair_problem(
        pair, service="updraft", namespace="updraft-system", now=late
    )
    assert late_problem is not None
    assert late_problem.startswith("tls.crt expires at")
    mixed = dataclasses.replace(pair, key=other.key)
    assert serving_pair_problem(mixed, service="updraft", namespace="updraft-system", now=NOW) == (
        "tls.key does not match tls.crt"
    )
    foreign = dataclasses.replace(pair, ca=other.ca)
    assert serving_pair_problem(
        foreign, service="updraft", namespace="updraft-system", now=NOW
    ) == ("tls.crt is not signed by ca.crt")
    garbage = dataclasses.replace(pair, cert=b"not a certificate")
    assert (
        serving_pair_problem(garbage, service="updraft", namespace="updraft-system", now=NOW) or ""
    ).startswith("does not parse")
