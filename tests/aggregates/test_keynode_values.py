"""The second direction on a live key node over real mTLS: the key node's values summed
over the partner's overlap, with the partner as aggregator and the key node decrypting.

Results equal the plaintext sum; under ``k`` nothing is released; a level below 4 gets
no grant; a malformed aggregate, or one from another session (another key), is refused
and never decrypts to a number; the release is logged before the result leaves.
"""

from __future__ import annotations

import grpc
import pytest
from aggregates_support import BANK_IDS, PROFILE, AggregateNode, key, spend

from keynode.auditlog import decode_entry
from keynode.auditlog.entries import EntryType
from keynode.client.aggregates import (
    AggregatesClient,
    KeyNodeValuesOutcome,
    PendingValues,
    broker_grants,
)
from keynode.client.broker import PartnerBrokerClient
from keynode.crypto.batch import GroupPool
from keynode.errors import NotFound, PolicyDenied, ProtocolError
from keynode.v1 import aggregates_pb2 as pb
from keynode.v1 import aggregates_pb2_grpc as pb_grpc

OPERATION = "aggregate.keynode_values"


def grant(live: AggregateNode, name: str = "bank") -> bytes:
    return bytes(PartnerBrokerClient(live.channel(name)).grant(OPERATION).token)


def client(live: AggregateNode, name: str = "bank") -> AggregatesClient:
    return AggregatesClient(live.channel(name), target=live.target)


def compute(live: AggregateNode, pool: GroupPool, ids: list[int]) -> PendingValues:
    return client(live).compute_key_node_values(
        "bank", [key(i) for i in ids], PROFILE, pool, grant=grant(live)
    )


def sum_values(
    live: AggregateNode, pool: GroupPool, ids: list[int], name: str = "bank"
) -> KeyNodeValuesOutcome:
    channel = live.channel(name)
    return client(live, name).key_node_values(
        name, [key(i) for i in ids], PROFILE, pool,
        grants=broker_grants(channel, len(ids), operation=OPERATION),
    )  # fmt: skip


def releases(live: AggregateNode) -> list[dict[str, object]]:
    log = live.node.policy_log
    entries = [decode_entry(e) for e in log.entries(0, log.size())]
    return [e.params for e in entries if e.type is EntryType.RELEASE]


def test_the_sum_equals_the_plaintext_sum_over_the_overlap_and_is_logged(
    live: AggregateNode, pool: GroupPool
) -> None:
    outcome = sum_values(live, pool, BANK_IDS)
    shared = [i for i in BANK_IDS if i < 400]
    assert outcome == KeyNodeValuesOutcome((sum(map(spend, shared)),), len(shared), 50, 400)
    (released,) = releases(live)
    assert released["operation"] == OPERATION
    assert released["input_count"] == len(BANK_IDS)
    assert released["released_count"] == len(shared)
    assert live.engine.open_sessions() == []


def test_fewer_than_k_shared_is_refused_by_the_cohort_rule(
    live: AggregateNode, pool: GroupPool
) -> None:
    pending = compute(live, pool, list(range(390, 420)))  # 10 shared
    assert pending.ciphertext is None  # the partner suppressed it under k
    with pytest.raises(PolicyDenied, match="below_cohort"):
        client(live).finish_key_node_values(pending, grant(live), None)
    assert releases(live) == []


def test_a_level_below_four_gets_no_grant(live: AggregateNode, pool: GroupPool) -> None:
    live.issue("insurer")
    live.enrol("insurer", 3)
    with pytest.raises(PolicyDenied, match="level_too_low"):
        sum_values(live, pool, BANK_IDS, name="insurer")


def test_a_malformed_aggregate_is_refused(live: AggregateNode, pool: GroupPool) -> None:
    pending = compute(live, pool, BANK_IDS)
    assert pending.ciphertext is not None
    with pytest.raises(ProtocolError, match="invalid ciphertext"):
        client(live).finish_key_node_values(pending, grant(live), pending.ciphertext[1:])
    assert releases(live) == []
    # The session ended with the refusal: the right ciphertext comes too late.
    with pytest.raises(NotFound, match="unknown or expired"):
        client(live).finish_key_node_values(pending, grant(live), pending.ciphertext)


def test_an_aggregate_from_another_session_never_decrypts_to_a_number(
    live: AggregateNode, pool: GroupPool
) -> None:
    first, second = compute(live, pool, BANK_IDS), compute(live, pool, BANK_IDS)
    # Each session has its own key: the other key's ciphertext is out of range for this
    # one (when its modulus is larger) or decrypts to noise the layout refuses.
    with pytest.raises(ProtocolError, match=r"invalid (ciphertext|result)"):
        client(live).finish_key_node_values(second, grant(live), first.ciphertext)
    assert releases(live) == []
    assert client(live).finish_key_node_values(first, grant(live), first.ciphertext).count == 100


def test_calls_out_of_order_and_other_partners_sessions_are_refused(
    live: AggregateNode, pool: GroupPool
) -> None:
    stub = pb_grpc.AggregatesStub(live.channel("bank"))
    opened = stub.OpenValuesSession(
        pb.OpenValuesRequest(grant=grant(live), profile_id=PROFILE, element_count=3)
    )
    ref = pb.AggregateSessionRef(session_id=opened.session_id)
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.DownloadValueRecords(ref))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    live.issue("media")
    live.enrol("media", 4)
    other = pb_grpc.AggregatesStub(live.channel("media"))
    with pytest.raises(grpc.RpcError) as caught:
        list(other.DownloadValuesHeader(ref))
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    live.node.broker.resign("bank", "contract-ended", actor="test")
    assert live.engine.open_sessions() == []
