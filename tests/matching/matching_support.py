"""Constants and types shared by the Matching tests."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from keynode.matching.engine import MatchingEngine

PROFILE = "test-profile:0001"
KEY_NODE_KEYS = [f"email:user{i}@example.com".encode() for i in range(500)]


@dataclass
class Served:
    engine: MatchingEngine
    channel: grpc.Channel
    target: str
