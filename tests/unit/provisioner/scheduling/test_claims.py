"""NodeClaims of the pass: host ports keep clashing pods on separate claims."""

from __future__ import annotations

from ..builders import ON_DEMAND, nodepool, pod, types_in
from .support import names, run


def test_host_port_conflict_forces_a_second_node() -> None:
    pool = nodepool(requirements=[ON_DEMAND, types_in("m5.2xlarge")])
    port = {
        "containers": [
            {
                "name": "a",
                "ports": [{"containerPort": 80, "hostPort": 8080}],
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
            }
        ]
    }
    other = {
        "containers": [
            {
                "name": "a",
                "ports": [{"containerPort": 80, "hostPort": 9090}],
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
            }
        ]
    }
    result = run([pod("a", spec=port), pod("b", spec=port), pod("c", spec=other)], [pool])
    assert sorted(names(c) for c in result.new_claims) == [["a", "c"], ["b"]]
