"""The small expiring map behind the TokenReview and SubjectAccessReview caches."""

from __future__ import annotations

from adapter.kubeauth import _MISS, _Expiring


def test_entries_expire_and_the_oldest_goes_first() -> None:
    now = [100.0]
    cache: _Expiring[str, int] = _Expiring(ttl=10.0, max_entries=2, monotonic=lambda: now[0])
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    now[0] += 9.9
    assert cache.get("b") == 2
    now[0] += 0.1
    assert cache.get("a") is _MISS
    cache.put("c", 3)
    cache.put("d", 4)  # over the bound: the least recently put ("c"'s elders) go
    assert cache.get("b") is _MISS
    assert cache.get("c") == 3
    assert cache.get("d") == 4
    cache.put("e", 5)
    assert cache.get("c") is _MISS
