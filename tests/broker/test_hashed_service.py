"""The hashed overlap on a live key node over real mTLS: levels, roles, grants, deletion.

The key node runs its own hasher (a loopback client with the key node's certificate);
the partner uses :class:`HashedOverlapClient` with its enrolled certificate.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from broker_support import KEY_NODE_KEYS, NETWORK, PROFILE, LiveNode
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from keynode import pki
from keynode.broker.hashed import HashedMatch, Side, public_key_bytes
from keynode.broker.hashed_service import HashedLimits, HashedMatches
from keynode.client.broker import OperatorClient, PartnerBrokerClient
from keynode.client.hashed import HashedOverlapClient, KeyNodeHasher
from keynode.crypto.batch import GroupPool
from keynode.errors import (
    LimitExceeded,
    NotFound,
    PolicyDenied,
    ProfileMismatch,
    ProtocolError,
    Unavailable,
    VerificationError,
)
from keynode.matching.engine import MatchingEngine
from keynode.node import KeyNode, StateDir
from keynode.policy import Grant, default_policy_bytes
from keynode.v1 import hashed_pb2 as pb
from keynode.v1 import hashed_pb2_grpc as pb_grpc

# m300..m459 against the key node's m0..m399: records 0..99 are shared. Every third
# record also has a phone that matches nothing, so records are padded to width 2.
BANK = [
    [f"email:m{i}@example.com".encode()] + ([f"phone:+4470{i:08d}".encode()] if i % 3 else [])
    for i in range(300, 460)
]
SHARED = tuple(range(100))
SIZE, MEMBERSHIP = "overlap.size.hashed", "overlap.membership.hashed"


@pytest.fixture
def node(tmp_path: Path, pool: GroupPool) -> Iterator[LiveNode]:
    ca = tmp_path / "ca"
    pki.init_ca(NETWORK, ca)
    key_node = tmp_path / "key-node"
    pki.issue(ca, pki.KEY_NODE, "retailer", key_node, dns_names=["localhost"], ips=["127.0.0.1"])
    engine = MatchingEngine(KEY_NODE_KEYS, PROFILE, pool)
    keynode = KeyNode(
        engine, StateDir(tmp_path / "state"), network=NETWORK, hashed_keys=KEY_NODE_KEYS
    )
    port = keynode.start("127.0.0.1:0", key_node)
    live = LiveNode(keynode, f"127.0.0.1:{port}", tmp_path, ca)
    for role, party in [(pki.OPERATOR, "olga"), (pki.AUDITOR, "aude"), (pki.PARTNER, "bank")]:
        live.issue(role, party)
    operator = OperatorClient(live.channel("olga"))
    operator.load_policy(default_policy_bytes())
    operator.add_partner("bank", (live.certs("bank") / "tls.crt").read_bytes())
    operator.set_level("bank", 2)
    try:
        yield live
    finally:
        keynode.stop(grace_s=None)


def _grant(live: LiveNode, operation: str, name: str = "bank") -> bytes:
    return PartnerBrokerClient(live.channel(name)).grant(operation).token


def _client(live: LiveNode, name: str = "bank") -> HashedOverlapClient:
    return HashedOverlapClient(live.channel(name), target=live.target, wait_s=10.0)


def _open(live: LiveNode, operation: str = SIZE, name: str = "bank") -> str:
    """Open a match by hand (no upload): what a slow or abandoned partner leaves behind."""
    request = pb.OpenHashedMatchRequest(
        grant=_grant(live, operation, name),
        partner_public_key=public_key_bytes(X25519PrivateKey.generate()),
        record_count=len(BANK),
        record_width=2,
        profile_id=PROFILE,
        membership=operation == MEMBERSHIP,
    )
    stub = pb_grpc.HashedOverlapStub(live.channel(name))
    return str(stub.OpenHashedMatch(request, timeout=10).match_id)


def test_size_at_level_two(node: LiveNode) -> None:
    result = _client(node).match(BANK, PROFILE, _grant(node, SIZE))
    assert (result.records, result.overlap, result.shared_records) == (len(BANK), 100, None)


def test_membership_is_refused_at_level_two_and_allowed_at_three(node: LiveNode) -> None:
    with pytest.raises(PolicyDenied, match="level_too_low"):
        _grant(node, MEMBERSHIP)
    with pytest.raises(VerificationError, match="invalid grant"):  # a size grant will not do
        _client(node).match(BANK, PROFILE, _grant(node, SIZE), membership=True)
    OperatorClient(node.channel("olga")).set_level("bank", 3)
    result = _client(node).match(BANK, PROFILE, _grant(node, MEMBERSHIP), membership=True)
    assert (result.overlap, result.shared_records) == (100, SHARED)


def test_wrong_roles_are_refused(node: LiveNode) -> None:
    auditor = pb_grpc.HashedOverlapStub(node.channel("aude"))
    with pytest.raises(grpc.RpcError) as info:
        auditor.OpenHashedMatch(pb.OpenHashedMatchRequest(profile_id=PROFILE), timeout=10)
    assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
    partner = pb_grpc.HashedOverlapStub(node.channel("bank"))
    watch = partner.WatchHashedMatches(pb.WatchHashedMatchesRequest(), timeout=10)
    with pytest.raises(grpc.RpcError) as info:
        next(watch)
    assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED


def test_profile_mismatch_is_refused_before_the_grant_is_spent(node: LiveNode) -> None:
    token = _grant(node, SIZE)
    with pytest.raises(ProfileMismatch, match="profile mismatch"):
        _client(node).match(BANK, "another-profile:0001", token)
    assert _client(node).match(BANK, PROFILE, token).overlap == 100


def test_uploads_are_deleted_after_the_match(
    node: LiveNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    discarded: list[HashedMatch] = []
    discard = HashedMatch.discard

    def spy(match: HashedMatch) -> None:
        discarded.append(match)
        discard(match)

    monkeypatch.setattr(HashedMatch, "discard", spy)
    assert _client(node).match(BANK, PROFILE, _grant(node, SIZE)).overlap == 100
    assert len(discarded) == 1 and discarded[0].held_digests() == 0
    assert node.node.hashed.open_matches() == []


def test_replayed_grant_is_refused(node: LiveNode) -> None:
    token = _grant(node, SIZE)
    assert _client(node).match(BANK, PROFILE, token).overlap == 100
    with pytest.raises(VerificationError, match="invalid grant"):
        _client(node).match(BANK, PROFILE, token)


def test_resignation_ends_open_matches_and_refuses_the_partner(node: LiveNode) -> None:
    match_id = _open(node)
    assert [(s[0], s[2]) for s in node.node.sessions()] == [(match_id, "hashed")]
    token = _grant(node, SIZE)
    PartnerBrokerClient(node.channel("bank")).resign("leaving-network")
    assert node.node.hashed.open_matches() == []
    with pytest.raises(VerificationError, match="revoked"):
        _client(node).match(BANK, PROFILE, token)


def test_another_partner_cannot_touch_a_match(node: LiveNode) -> None:
    match_id = _open(node)
    node.issue(pki.PARTNER, "insurer")
    insurer = pb_grpc.HashedOverlapStub(node.channel("insurer"))
    with pytest.raises(grpc.RpcError) as info:
        insurer.GetHashedMatchResult(pb.HashedMatchRef(match_id=match_id), timeout=10)
    assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED


def test_small_sets_are_refused_by_the_cohort_rule_and_deleted(node: LiveNode) -> None:
    with pytest.raises(PolicyDenied, match="below_cohort"):
        _client(node).match(BANK[:10], PROFILE, _grant(node, SIZE))
    assert node.node.hashed.open_matches() == []
    bank = pb_grpc.HashedOverlapStub(node.channel("bank"))
    with pytest.raises(grpc.RpcError) as info:
        bank.GetHashedMatchResult(pb.HashedMatchRef(match_id="no-such-match"), timeout=10)
    assert info.value.code() is grpc.StatusCode.NOT_FOUND


def test_without_a_hasher_the_partner_is_told_to_retry_and_keeps_its_grant(
    node: LiveNode,
) -> None:
    running = node.node._hasher
    assert running is not None
    running[0].stop()
    deadline = time.monotonic() + 5
    while node.node.hashed.hasher_registered and time.monotonic() < deadline:
        time.sleep(0.01)  # the broker sees the cancelled watch asynchronously
    token = _grant(node, SIZE)
    with pytest.raises(Unavailable, match="hasher is not running"):
        _client(node).match(BANK, PROFILE, token)
    channel = node.channel("key-node")
    restarted = KeyNodeHasher(channel, KEY_NODE_KEYS, X25519PrivateKey.generate())
    restarted.start()
    try:
        assert node.node.hashed.wait_for_hasher(5)
        assert _client(node).match(BANK, PROFILE, token).overlap == 100
    finally:
        restarted.stop()


# -- the broker's registry, in process (clock injected) ----------------------------------

GRANT = Grant(
    grant_id="g1", partner="bank", operation=SIZE, level=2, issued_ms=0, expires_ms=1,
    min_cohort=50, max_set_size=10, policy_hash="p", key_id="k",
)  # fmt: skip
HASHER_KEY = public_key_bytes(X25519PrivateKey.generate())
PARTNER_KEY = public_key_bytes(X25519PrivateKey.generate())


def _registry(now: list[float], **limits: Any) -> HashedMatches:
    matches = HashedMatches(PROFILE, limits=HashedLimits(**limits), clock=lambda: now[0])
    matches.subscribe(HASHER_KEY)
    return matches


def _open_in(matches: HashedMatches) -> str:
    matches.check_request(PROFILE, 2, 1)
    match_id, key = matches.open("bank", PARTNER_KEY, 2, 1, grant=GRANT, membership=False)
    assert key == HASHER_KEY
    return match_id


def test_matches_expire_and_their_uploads_go() -> None:
    now = [0.0]
    matches = _registry(now, match_ttl_s=60)
    match_id = _open_in(matches)
    matches.upload(match_id, Side.PARTNER, iter([(0, b"\x01" * 64)]))
    now[0] = 61.0
    assert matches.open_matches() == []
    with pytest.raises(NotFound):
        matches.take_result(match_id)


def test_open_matches_and_sizes_are_capped() -> None:
    matches = _registry([0.0], max_matches=1, max_records=10, max_digests=12)
    _open_in(matches)
    with pytest.raises(LimitExceeded, match="too many open"):
        matches.check_request(PROFILE, 2, 1)
    with pytest.raises(LimitExceeded, match="caps"):
        _registry([0.0], max_records=10).check_request(PROFILE, 11, 1)
    with pytest.raises(LimitExceeded, match="caps"):
        _registry([0.0], max_digests=12).check_request(PROFILE, 7, 2)
    with pytest.raises(ProtocolError, match="record width"):
        _registry([0.0]).check_request(PROFILE, 1, 9)


def test_a_failed_upload_ends_the_match() -> None:
    matches = _registry([0.0])
    match_id = _open_in(matches)
    with pytest.raises(ProtocolError, match="out of order"):
        matches.upload(match_id, Side.KEY_NODE, iter([(1, b"\x01" * 32)]))
    assert matches.open_matches() == []


def test_a_reconnecting_hasher_is_told_of_matches_still_waiting_for_it() -> None:
    matches = _registry([0.0])
    match_id = _open_in(matches)
    again = matches.subscribe(HASHER_KEY)
    assert again.inbox.get_nowait().match_id == match_id
    other = matches.subscribe(public_key_bytes(X25519PrivateKey.generate()))
    assert other.inbox.empty()  # a new key cannot serve a match agreed under the old one
