"""The queue order: the plan does not depend on the order pods arrive in."""

from __future__ import annotations

from ..builders import ON_DEMAND, nodepool, pods, types_in
from .support import names, run


def test_result_is_deterministic_whatever_the_input_order() -> None:
    pool = nodepool(requirements=[ON_DEMAND, types_in("c5.large", "m5.large", "m5.xlarge")])
    batch = pods("p", 7, "700m", "1Gi") + pods("q", 4, "300m", "3Gi")
    first = run(batch, [pool])
    second = run(list(reversed(batch)), [pool])
    assert [(c.name, names(c)) for c in first.new_claims] == [
        (c.name, names(c)) for c in second.new_claims
    ]
