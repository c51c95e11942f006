"""The gRPC door's own Prometheus series: calls handled, by method and status code.

Owns a server interceptor that counts every call of a registered method once it ends, with the
code it ended with (streams too: their code is the one they close with). It must not look at
request contents: the per-trigger series live in the cache (`scalers.cache`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter

__all__ = ["CallCounter", "GrpcMetrics"]


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


# grpc ships no type stubs for grpc.aio's base classes.
class CallCounter(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Counts each call into `GrpcMetrics.handled` when it ends."""

    def __init__(self, metrics: GrpcMetrics) -> None:
        self._metrics = metrics
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}
        """Per method: gRPC asks for every call, and building the wrapper each time costs
        more than the cached GetMetrics it wraps."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method_path: str = handler_call_details.method
        wrapped = self._wrapped.get(method_path)
        if wrapped is not None:
            return wrapped
        handler = await continuation(handler_call_details)
        if handler is None:  # an unknown method: gRPC answers UNIMPLEMENTED itself
            return handler
        wrapped = self._wrap(method_path, handler)
        self._wrapped[method_path] = wrapped
        return wrapped

    def _wrap(self, method_path: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        service, _, method = method_path.lstrip("/").rpartition("/")
        counter = self._metrics.handled

        def count(context: grpc.aio.ServicerContext, failure: BaseException | None) -> None:
            counter.labels(service, method, _code_of(context, failure)).inc()

        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                try:
                    response = await inner(request, context)
                except BaseException as failure:
                    count(context, failure)
                    raise
                count(context, None)
                return response

            return grpc.unary_unary_rpc_method_handler(
                unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                try:
                    async for response in inner_stream(request, context):
                        yield response
                except BaseException as failure:
                    count(context, failure)
                    raise
                count(context, None)

            return grpc.unary_stream_rpc_method_handler(
                stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # client or bidi streams: none of ours (reflection counts as-is)
