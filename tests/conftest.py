"""Shared fixtures: a real PostgreSQL for store tests, in its own schema per test.

``KEYNODE_TEST_POSTGRES_DSN`` names the server. Without it, tests marked
``@pytest.mark.postgres`` are skipped — unless ``KEYNODE_REQUIRE_POSTGRES=1`` (as in CI),
when they fail instead, so that a missing database can never pass silently.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from urllib.parse import quote

import pytest


@pytest.fixture
def postgres_dsn() -> Iterator[str]:
    """A ``postgresql://`` URL whose search_path is a fresh, empty schema (dropped after)."""
    dsn = os.environ.get("KEYNODE_TEST_POSTGRES_DSN")
    if not dsn:
        if os.environ.get("KEYNODE_REQUIRE_POSTGRES") == "1":
            pytest.fail("KEYNODE_REQUIRE_POSTGRES=1 but KEYNODE_TEST_POSTGRES_DSN is not set")
        pytest.skip("KEYNODE_TEST_POSTGRES_DSN is not set")
    import psycopg

    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in dsn else "?"
    try:
        yield f"{dsn}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
