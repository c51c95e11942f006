"""The small expiring map behind the TokenReview and SubjectAccessReview caches."""

from __future__ import annotations

from adapter.kubeauth import _MISS, _Expiring
from kits.clock import FakeClock


def test_entries_expire_and_the_oldest_goes_first() -> None:
    clock = FakeClock()
    cache: _Expiring[str, int] = _Expiring(ttl=10.0, max_entries=2, clock=clock)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    clock.advance(9.9)
    assert cache.get("b") == 2
    clock.advance(0.1)
    assert cache.get("a") is _MISS
    cache.put("c", 3)
    cache.put("d", 4)  # over the bound: the least recently put ("c"'s elders) go
    assert cache.get("b") is _MISS
    assert cache.get("c") == 3
    assert cache.get("d") == 4
    cache.put("e", 5)
    assert cache.get("c") is _MISS
