"""What only the ``postgresql`` scaler does, against a real PostgreSQL on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from scalers import (
    BadResponseError,
    BadResultError,
    MetricCache,
    ScalerContext,
    SessionPool,
    SystemClock,
    TriggerSpec,
    UnavailableError,
)
from scalers.postgresql import PostgresScaler
from tests.integration.queues.servers import POSTGRES_PASSWORD, POSTGRES_USER
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration


@pytest.fixture
async def cache() -> AsyncIterator[MetricCache]:
    cache = MetricCache(metrics_registry=CollectorRegistry())
    yield cache
    await cache.close()


def spec(server: ServerProcess, query: str, **metadata: str) -> TriggerSpec:
    return TriggerSpec(
        "postgresql",
        {
            "host": "127.0.0.1",
            "port": str(server.port),
            "userName": POSTGRES_USER,
            "dbName": "postgres",
            "sslmode": "disable",
            "query": query,
            "targetQueryValue": "10",
            **metadata,
        },
        {"password": POSTGRES_PASSWORD},
    )


@pytest.mark.parametrize(
    ("query", "value"),
    [("SELECT 7", 7.0), ("SELECT 2.5::numeric", 2.5), ("SELECT 1.25::float8", 1.25)],
)
async def test_numeric_cells(
    cache: MetricCache, postgres_server: ServerProcess, query: str, value: float
) -> None:
    assert (await cache.get(spec(postgres_server, query))).value == value


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT 1 WHERE false", "returned no rows; expected exactly one"),
        ("SELECT NULL::int", "returned NULL; expected a number"),
        ("SELECT 'many'", "returned a value of type str; expected a number"),
        ("SELECT 1, 2", "returned 2 columns; expected exactly one"),
        ("SELECT generate_series(1, 3)", "returned more than one row; expected exactly one"),
        ("SELECT 'NaN'::float8", "returned nan; expected a number"),
    ],
)
async def test_results_that_are_not_one_number(
    cache: MetricCache, postgres_server: ServerProcess, query: str, message: str
) -> None:
    with pytest.raises(BadResultError, match=message):
        await cache.get(spec(postgres_server, query))


async def test_query_runs_read_only(cache: MetricCache, postgres_server: ServerProcess) -> None:
    query = "WITH gone AS (DELETE FROM pg_class WHERE false RETURNING 1) SELECT count(*) FROM gone"
    with pytest.raises(BadResponseError, match="the query must not write"):
        await cache.get(spec(postgres_server, query))


async def test_sql_errors_carry_the_sqlstate(
    cache: MetricCache, postgres_server: ServerProcess
) -> None:
    with pytest.raises(BadResponseError, match='42P01: relation "absent" does not exist'):
        await cache.get(spec(postgres_server, "SELECT count(*) FROM absent"))
    with pytest.raises(BadResponseError, match='3D000: database "nope" does not exist'):
        await cache.get(spec(postgres_server, "SELECT 1", dbName="nope"))


async def test_statement_timeout(postgres_server: ServerProcess) -> None:
    sessions = SessionPool()
    context = ScalerContext(clock=SystemClock(), sessions=sessions)
    scaler = PostgresScaler.from_spec(
        spec(postgres_server, "SELECT 1 FROM pg_sleep(10)"), context=context
    )
    scaler.timeout = 0.5
    try:
        with pytest.raises(UnavailableError, match="statement timeout"):
            await scaler.measure()
    finally:
        await scaler.close()
        await sessions.close()


@pytest.mark.parametrize("form", ["libpq", "url"])
async def test_connection_string_in_auth(
    cache: MetricCache, postgres_server: ServerProcess, form: str
) -> None:
    port = postgres_server.port
    if form == "libpq":
        connection = (
            f"host=127.0.0.1 port={port} user={POSTGRES_USER} "
            f"password='{POSTGRES_PASSWORD}' dbname=postgres sslmode=disable"
        )
    else:
        connection = (
            f"postgresql://{POSTGRES_USER}:{POSTGRES_PASSWORD}@127.0.0.1:{port}/postgres"
            "?sslmode=disable"
        )
    trigger = TriggerSpec(
        "postgresql", {"query": "SELECT 3", "targetQueryValue": "1"}, {"connection": connection}
    )
    measurement = await cache.get(trigger)
    assert (measurement.value, measurement.active) == (3.0, True)
