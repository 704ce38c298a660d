"""A live key node (broker + matching + audit log) behind real mTLS, and its network PKI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from broker_support import KEY_NODE_KEYS, NETWORK, PROFILE, SEGMENTS, LiveNode

from keynode import pki
from keynode.broker.audience import SegmentDirectory
from keynode.crypto.batch import GroupPool
from keynode.matching.engine import MatchingEngine
from keynode.node import KeyNode, StateDir


@pytest.fixture(scope="module")
def pool() -> Iterator[GroupPool]:
    with GroupPool(1) as p:
        yield p


@pytest.fixture
def live(tmp_path: Path, pool: GroupPool) -> Iterator[LiveNode]:
    ca = tmp_path / "ca"
    pki.init_ca(NETWORK, ca)
    pki.issue(
        ca,
        pki.KEY_NODE,
        "retailer",
        tmp_path / "key-node",
        dns_names=["localhost"],
        ips=["127.0.0.1"],
    )
    engine = MatchingEngine(KEY_NODE_KEYS, PROFILE, pool)
    node = KeyNode(
        engine, StateDir(tmp_path / "state"), network=NETWORK, directory=SegmentDirectory(SEGMENTS)
    )
    port = node.start("127.0.0.1:0", tmp_path / "key-node")
    live = LiveNode(node, f"127.0.0.1:{port}", tmp_path, ca)
    for role, party in [(pki.OPERATOR, "olga"), (pki.AUDITOR, "aude"), (pki.PARTNER, "bank")]:
        live.issue(role, party)
    try:
        yield live
    finally:
        node.stop(grace_s=None)
