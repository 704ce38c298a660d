"""Data and helpers shared by the aggregates tests: a small key node with three segments.

The key node has 400 members in ``gold`` (0-119), ``silver`` (120-379) and ``bronze``
(380-399); the bank's 160 records (300-459) share 100 of them: 80 in silver and 20 in
bronze. Under the default policy (k = 50) silver is released, gold and bronze are
suppressed.

For the second direction the key node has a ``spend`` value per member
(:func:`spend`), so the bank's overlap sums 100 of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from keynode import pki
from keynode.aggregates.engine import AggregateEngine, SegmentedIdentifiers
from keynode.aggregates.values import KeyNodeValues
from keynode.node import KeyNode
from keynode.transport.tls import open_channel

NETWORK = "aggnet"
PROFILE = "test-profile:0001"
BITS = (16, 8)


def key(i: int) -> bytes:
    return f"email:m{i}@example.com".encode()


def segment_of(i: int) -> str:
    return "gold" if i < 120 else "silver" if i < 380 else "bronze"


KEY_NODE = SegmentedIdentifiers.from_records(
    [[key(i)] for i in range(400)], [segment_of(i) for i in range(400)]
)


def spend(i: int) -> int:
    """The key node's value for member ``i``."""
    return (i * 7919) % 100_000


KEY_NODE_VALUES = KeyNodeValues(tuple((key(i),) for i in range(400)), tuple(map(spend, range(400))))
BANK_IDS = list(range(300, 460))
BANK_RECORDS = [[key(i)] for i in BANK_IDS]
BANK_VALUES = [[(i * 7919) % 2**16, i % 200] for i in BANK_IDS]


def expected(
    ids: list[int], values: list[list[int]], k: int
) -> dict[str, tuple[tuple[int, ...], int] | None]:
    """The plaintext computation: per segment, column sums and count; None under k."""
    sums: dict[str, list[int]] = {s: [0] * len(BITS) for s in ("bronze", "gold", "silver")}
    counts = dict.fromkeys(sums, 0)
    for i, row in zip(ids, values, strict=True):
        if i < 400:
            s = segment_of(i)
            counts[s] += 1
            sums[s] = [a + b for a, b in zip(sums[s], row, strict=True)]
    return {s: (tuple(sums[s]), counts[s]) if counts[s] >= k else None for s in sums}


@dataclass
class AggregateNode:
    node: KeyNode
    engine: AggregateEngine
    target: str
    root: Path
    ca: Path

    def certs(self, name: str) -> Path:
        return self.root / name

    def issue(self, party: str) -> None:
        pki.issue(self.ca, pki.PARTNER, party, self.certs(party))

    def channel(self, name: str) -> grpc.Channel:
        return open_channel(self.target, self.certs(name), server_name="localhost")

    def enrol(self, party: str, level: int) -> None:
        broker = self.node.broker
        broker.enrol(party, pki.read_certificate(self.certs(party) / "tls.crt"), actor="test")
        broker.set_level(party, level, actor="test")
