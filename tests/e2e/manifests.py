"""Typing glue for kubernetes-asyncio: bodies are written as plain dicts (the JSON a user would
apply), which the client serializes unchanged; `body()` only tells its typed signatures so."""

from __future__ import annotations

from typing import Any, TypeVar, cast

M = TypeVar("M")


def body(model: type[M], manifest: dict[str, Any]) -> M:
    """`manifest` passed where the client's signature names `model`."""
    return cast(M, manifest)
