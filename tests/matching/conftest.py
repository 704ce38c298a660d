"""A real Matching server on a loopback port, over a small key-node dataset."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from matching_support import KEY_NODE_KEYS, MAX_MESSAGE, PROFILE, Served

from keynode.crypto.batch import GroupPool
from keynode.matching.engine import MatchingEngine, MatchingLimits
from keynode.matching.service import add_to_server


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
    server = grpc.server(
        ThreadPoolExecutor(8), options=[("grpc.max_receive_message_length", MAX_MESSAGE)]
    )
    add_to_server(server, engine)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    target = f"127.0.0.1:{port}"
    channel = grpc.insecure_channel(target)
    try:
        yield Served(engine, channel, target)
    finally:
        channel.close()
        server.stop(grace=None)
