"""A real Matching server on a loopback port, over a small key-node dataset."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from matching_support import KEY_NODE_KEYS, PROFILE, Served

from keynode.crypto.batch import GroupPool
from keynode.matching.engine import MatchingEngine, MatchingLimits
from keynode.matching.server import start_matching_server
from keynode.transport.tls import open_channel


@pytest.fixture(scope="module")
def pool() -> Iterator[GroupPool]:
    with GroupPool(1) as p:
        yield p


@pytest.fixture
def served(pool: GroupPool) -> Iterator[Served]:
    engine = MatchingEngine(
        KEY_NODE_KEYS,
        PROFILE,
        pool,
        limits=MatchingLimits(max_set_size=2000, max_sessions=4, max_chunk_elements=128),
    )
    server = start_matching_server(engine, "127.0.0.1:0")
    target = f"127.0.0.1:{server.port}"
    channel = open_channel(target, None)
    try:
        yield Served(engine, channel, target)
    finally:
        channel.close()
        server.stop(grace=None)
