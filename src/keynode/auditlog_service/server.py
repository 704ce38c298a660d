"""The AuditLog servicer and the one function that builds and starts its server.

The servicer only reads from a :class:`~keynode.auditlog.store.LogStore`; errors
become gRPC statuses through :func:`keynode.transport.status.grpc_errors` (bad ranges:
INVALID_ARGUMENT; beyond the tree: NOT_FOUND).
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from keynode import pki
from keynode.auditlog.checkpoint import unverified_size
from keynode.auditlog.store import LogStore
from keynode.errors import InputError
from keynode.transport.auth import Authorizer
from keynode.transport.server import KeynodeServer, build_server
from keynode.transport.status import grpc_errors
from keynode.v1 import audit_pb2, audit_pb2_grpc

SERVICE_NAME = audit_pb2.DESCRIPTOR.services_by_name["AuditLog"].full_name

#: Entries per streamed message: big enough to amortise per-message cost, and at most
#: 4 KiB each (entries.MAX_ENTRY_BYTES), well under gRPC's 4 MiB message cap.
BATCH_ENTRIES = 512


class AuditLogServicer(audit_pb2_grpc.AuditLogServicer):
    """Serves one log store, read-only.

    With an ``authorizer`` (mTLS), only auditors and operators may read the log.
    """

    def __init__(self, store: LogStore, *, authorizer: Authorizer | None = None) -> None:
        self._store = store
        self._auth = authorizer

    def _check(self, context: grpc.ServicerContext) -> None:
        if self._auth is not None:
            self._auth.require(context, {pki.AUDITOR, pki.OPERATOR})

    @grpc_errors
    def GetLatestCheckpoint(
        self, request: audit_pb2.GetCheckpointRequest, context: grpc.ServicerContext
    ) -> audit_pb2.SignedCheckpoint:
        self._check(context)
        note = self._store.latest_checkpoint()
        return audit_pb2.SignedCheckpoint(note=note, size=unverified_size(note))

    @grpc_errors
    def GetEntries(
        self, request: audit_pb2.GetEntriesRequest, context: grpc.ServicerContext
    ) -> Iterator[audit_pb2.EntryBatch]:
        self._check(context)
        start = request.start
        batch: list[bytes] = []
        for body in self._store.entries(request.start, request.end):
            batch.append(body)
            if len(batch) == BATCH_ENTRIES:
                yield audit_pb2.EntryBatch(start=start, entries=batch)
                start += len(batch)
                batch = []
        if batch:
            yield audit_pb2.EntryBatch(start=start, entries=batch)

    @grpc_errors
    def GetInclusionProof(
        self, request: audit_pb2.GetInclusionProofRequest, context: grpc.ServicerContext
    ) -> audit_pb2.InclusionProof:
        self._check(context)
        size = request.tree_size or self._store.size()
        hashes = self._store.inclusion_proof(request.index, size)
        return audit_pb2.InclusionProof(index=request.index, tree_size=size, hashes=hashes)

    @grpc_errors
    def GetConsistencyProof(
        self, request: audit_pb2.GetConsistencyProofRequest, context: grpc.ServicerContext
    ) -> audit_pb2.ConsistencyProof:
        self._check(context)
        size2 = request.size2 or self._store.size()
        hashes = self._store.consistency_proof(request.size1, size2)
        return audit_pb2.ConsistencyProof(size1=request.size1, size2=size2, hashes=hashes)


def serve_audit(
    store: LogStore,
    listen: str,
    credentials: grpc.ServerCredentials | None,
    *,
    authorizer: Authorizer | None = None,
) -> KeynodeServer:
    """Start the AuditLog service on ``listen`` (``host:port``; port 0 picks one).

    ``credentials`` None means plaintext, which :func:`keynode.transport.server.build_server`
    allows on loopback addresses only. With mTLS credentials an ``authorizer`` is
    required, so that only auditors and operators read. Health checking and reflection
    come with it.
    """
    if credentials is not None and authorizer is None:
        raise InputError("an mTLS audit service needs an authorizer (auditors and operators)")
    built = build_server(listen, credentials=credentials, services=[SERVICE_NAME])
    servicer = AuditLogServicer(store, authorizer=authorizer)
    audit_pb2_grpc.add_AuditLogServicer_to_server(servicer, built.server)
    built.start()
    return built
