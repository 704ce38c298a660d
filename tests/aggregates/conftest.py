"""A live key node serving Aggregates behind real mTLS, and Paillier keys for the partner.

Partner keys are 1024 bits and the node accepts keys from 1024 bits, so that a 512-bit
key can stand for a weak one; both sizes are for tests only (``allow_weak``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from aggregates_support import KEY_NODE, KEY_NODE_VALUES, NETWORK, PROFILE, AggregateNode

from keynode import pki
from keynode.aggregates.engine import AggregateEngine, AggregateLimits
from keynode.crypto.batch import GroupPool
from keynode.crypto.paillier import PaillierPrivateKey, generate_keypair
from keynode.matching.engine import MatchingEngine
from keynode.node import KeyNode, StateDir
from keynode.policy import default_policy_bytes

TEST_KEY_BITS = 1024


@pytest.fixture(scope="module")
def pool() -> Iterator[GroupPool]:
    with GroupPool(1) as p:
        yield p


@pytest.fixture(scope="session")
def partner_key() -> PaillierPrivateKey:
    return generate_keypair(TEST_KEY_BITS, rng=random.Random(41), allow_weak=True)[1]


@pytest.fixture(scope="session")
def foreign_key() -> PaillierPrivateKey:
    return generate_keypair(TEST_KEY_BITS, rng=random.Random(42), allow_weak=True)[1]


@pytest.fixture
def limits() -> AggregateLimits:
    return AggregateLimits(min_key_bits=TEST_KEY_BITS, max_chunk_elements=128, max_sessions=3)


@pytest.fixture
def profile_id() -> str:
    """The key node's normalisation profile (a module may override it)."""
    return PROFILE


@pytest.fixture
def live(
    tmp_path: Path, pool: GroupPool, limits: AggregateLimits, profile_id: str
) -> Iterator[AggregateNode]:
    ca = tmp_path / "ca"
    pki.init_ca(NETWORK, ca)
    pki.issue(ca, pki.KEY_NODE, "retailer", tmp_path / "key-node", dns_names=["localhost"])
    engine = AggregateEngine(KEY_NODE, profile_id, pool, limits=limits, values=KEY_NODE_VALUES)
    node = KeyNode(
        MatchingEngine(KEY_NODE.keys[:1], profile_id, pool),
        StateDir(tmp_path / "state"),
        network=NETWORK,
        aggregates=engine,
    )
    node.broker.load_policy(default_policy_bytes(), actor="test")
    port = node.start("127.0.0.1:0", tmp_path / "key-node")
    live = AggregateNode(node, engine, f"127.0.0.1:{port}", tmp_path, ca)
    live.issue("bank")
    live.enrol("bank", 4)
    try:
        yield live
    finally:
        node.stop(grace_s=None)
