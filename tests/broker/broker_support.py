"""Constants and the live-node handle shared by the broker tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from keynode import pki
from keynode.node import KeyNode
from keynode.transport.tls import open_channel

NETWORK = "testnet"
PROFILE = "test-profile:0001"
MEMBERS = 400
KEY_NODE_KEYS = [f"email:m{i}@example.com".encode() for i in range(MEMBERS)]
SEGMENTS = {"gold": [f"m{i}" for i in range(0, 120)], "silver": [f"m{i}" for i in range(120, 400)]}


@dataclass
class LiveNode:
    node: KeyNode
    target: str
    root: Path
    ca: Path

    def certs(self, name: str) -> Path:
        return self.root / name

    def issue(self, role: str, party: str, name: str | None = None) -> Path:
        out = self.certs(name or party)
        pki.issue(self.ca, role, party, out)
        return out

    def channel(self, name: str) -> grpc.Channel:
        return open_channel(self.target, self.certs(name), server_name="localhost")
