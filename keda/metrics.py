"""The gRPC door's own Prometheus series: calls handled, by method and status code.

Owns `counted()`, which wraps a servicer's RPC methods once, when the server is built, so that
every call of a registered method is counted once it ends, with the code it ended with (streams
too: their code is the one they close with). It must not look at request contents: the
per-trigger series live in the cache (`scalers.cache`).

Wrapping at registration rather than with a `grpc.aio.ServerInterceptor` is for cost: with any
interceptor grpc.aio runs an interceptor coroutine chain on every call, which cost more than a
cached GetMetrics itself (bench/keda_grpc.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar, cast

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from prometheus_client import CollectorRegistry, Counter

__all__ = ["GrpcMetrics", "counted"]

S = TypeVar("S")


class GrpcMetrics:
    """On an injectable registry; a fresh private one when none is given."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = CollectorRegistry() if registry is None else registry
        self.handled = Counter(
            "updraft_grpc_server_handled",
            "gRPC calls finished, by service, method and status code (OK, INVALID_ARGUMENT, "
            "NOT_FOUND, UNAVAILABLE, CANCELLED, ...).",
            ["grpc_service", "grpc_method", "grpc_code"],
            registry=registry,
        )


def _code_of(context: grpc.aio.ServicerContext, failure: BaseException | None) -> str:
    code: object = context.code()
    if isinstance(failure, asyncio.CancelledError):
        code = grpc.StatusCode.CANCELLED
    elif not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.OK if failure is None else grpc.StatusCode.UNKNOWN
    assert isinstance(code, grpc.StatusCode)
    name: str = code.name
    return name


class _Tally:
    """One method's counter children, bound once per code: `labels()` on every call costs a
    lock and a dict lookup on a tuple of three strings."""

    __slots__ = ("_children", "_counter", "_method", "_service")

    def __init__(self, counter: Counter, service: str, method: str) -> None:
        self._counter = counter
        self._service = service
        self._method = method
        self._children: dict[str, Counter] = {}

    def __call__(self, context: grpc.aio.ServicerContext, failure: BaseException | None) -> None:
        # The common case, a call that returned without setting a code, skips the mapping.
        code = "OK" if failure is None and context.code() is None else _code_of(context, failure)
        child = self._children.get(code)
        if child is None:
            child = self._children[code] = self._counter.labels(self._service, self._method, code)
        child.inc()


class _Counted:
    """Stands in for a servicer: one attribute per RPC of its service, each counting."""


def _unary(
    inner: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]], count: _Tally
) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            response = await inner(request, context)
        except BaseException as failure:
            count(context, failure)
            raise
        count(context, None)
        return response

    return unary


def _stream(
    inner: Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]], count: _Tally
) -> Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]:
    async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            async for response in inner(request, context):
                yield response
        except BaseException as failure:
            count(context, failure)
            raise
        count(context, None)

    return stream


def counted(servicer: S, service: ServiceDescriptor, metrics: GrpcMetrics) -> S:
    """`servicer` with each unary-request RPC of `service` counted into `metrics.handled`;
    register the result in its place (`add_..._to_server`). Client-streaming RPCs are passed
    through uncounted (none of ours has one)."""
    wrapper = _Counted()
    for method in service.methods:
        inner = getattr(servicer, method.name)
        if not method.client_streaming:
            count = _Tally(metrics.handled, service.full_name, method.name)
            inner = _stream(inner, count) if method.server_streaming else _unary(inner, count)
        setattr(wrapper, method.name, inner)
    return cast(S, wrapper)
