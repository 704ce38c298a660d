"""The AuditLog service on a real port: auditors verify through it; bad requests get clear codes."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from auditlog_support import Network

from keynode.auditlog import NoteVerifier, PolicyLog, merkle, verify_log
from keynode.auditlog_service import AuditClient, serve_audit
from keynode.auditlog_service import server as audit_server
from keynode.errors import InputError, NotFound, ProtocolError
from keynode.policy import default_policy
from keynode.transport.server import KeynodeServer
from keynode.v1 import audit_pb2, audit_pb2_grpc


@pytest.fixture
def served(network: Network, log: PolicyLog) -> Iterator[tuple[AuditClient, grpc.Channel]]:
    network.story()
    server: KeynodeServer = serve_audit(log.store, "127.0.0.1:0", None)
    address = f"127.0.0.1:{server.port}"
    channel = grpc.insecure_channel(address)
    try:
        yield AuditClient(channel, address), channel
    finally:
        channel.close()
        server.stop(grace=None)


def test_auditor_verifies_through_the_service(
    served: tuple[AuditClient, grpc.Channel],
    verifier: NoteVerifier,
    log: PolicyLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(audit_server, "BATCH_ENTRIES", 3)  # several streamed batches
    client, _ = served
    policy = default_policy()
    verdict = verify_log(client, verifier, {policy.hash: policy})
    assert verdict.checkpoint.size == log.size()


def test_proofs_from_the_service_verify(
    served: tuple[AuditClient, grpc.Channel], verifier: NoteVerifier
) -> None:
    client, _ = served
    latest = verifier.verify(client.latest_checkpoint())
    bodies = list(client.entries(0, latest.size))
    for index in (0, latest.size - 1):
        proof = client.inclusion_proof(index, latest.size)
        merkle.verify_inclusion(
            merkle.leaf_hash(bodies[index]), index, latest.size, proof, latest.root_hash
        )
    proof = client.consistency_proof(5, latest.size)
    merkle.verify_consistency(5, latest.size, proof, merkle.root_hash(bodies[:5]), latest.root_hash)


BAD_REQUESTS = {
    "start>end": (
        "GetEntries",
        audit_pb2.GetEntriesRequest(start=5, end=2),
        grpc.StatusCode.INVALID_ARGUMENT,
    ),
    "end>size": (
        "GetEntries",
        audit_pb2.GetEntriesRequest(start=0, end=10_000),
        grpc.StatusCode.NOT_FOUND,
    ),
    "index>=size": (
        "GetInclusionProof",
        audit_pb2.GetInclusionProofRequest(index=10_000),
        grpc.StatusCode.INVALID_ARGUMENT,
    ),
    "size>tree": (
        "GetInclusionProof",
        audit_pb2.GetInclusionProofRequest(index=0, tree_size=10_000),
        grpc.StatusCode.NOT_FOUND,
    ),
    "size1>size2": (
        "GetConsistencyProof",
        audit_pb2.GetConsistencyProofRequest(size1=9, size2=3),
        grpc.StatusCode.INVALID_ARGUMENT,
    ),
    "size2>tree": (
        "GetConsistencyProof",
        audit_pb2.GetConsistencyProofRequest(size1=1, size2=10_000),
        grpc.StatusCode.NOT_FOUND,
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_ranges_get_clear_status_codes(
    served: tuple[AuditClient, grpc.Channel], case: str
) -> None:
    _, channel = served
    method, request, code = BAD_REQUESTS[case]
    with pytest.raises(grpc.RpcError) as caught:
        result = getattr(audit_pb2_grpc.AuditLogStub(channel), method)(request)
        list(result) if method == "GetEntries" else None
    assert caught.value.code() is code


def test_client_turns_statuses_into_keynode_errors(
    served: tuple[AuditClient, grpc.Channel],
) -> None:
    client, _ = served
    with pytest.raises(NotFound):
        list(client.entries(0, 10_000))
    with pytest.raises(ProtocolError):
        client.consistency_proof(9, 3)


def test_empty_log_has_no_checkpoint(log: PolicyLog) -> None:
    server = serve_audit(log.store, "127.0.0.1:0", None)
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = audit_pb2_grpc.AuditLogStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetLatestCheckpoint(audit_pb2.GetCheckpointRequest())
        assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    server.stop(grace=None)


def test_plaintext_is_refused_off_loopback(log: PolicyLog) -> None:
    with pytest.raises(InputError):
        serve_audit(log.store, "0.0.0.0:0", None)
