"""A small AuditLog client: a :class:`~keynode.auditlog.verify.LogSource` over gRPC."""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from keynode.errors import VerificationError
from keynode.transport.status import error_from_rpc
from keynode.v1 import audit_pb2, audit_pb2_grpc


class AuditClient:
    """Reads a remote policy log; every RPC failure becomes a keynode error."""

    def __init__(self, channel: grpc.Channel, target: str = "") -> None:
        self._stub = audit_pb2_grpc.AuditLogStub(channel)
        self._target = target

    def latest_checkpoint(self) -> str:
        """The server's latest signed checkpoint."""
        try:
            return str(self._stub.GetLatestCheckpoint(audit_pb2.GetCheckpointRequest()).note)
        except grpc.RpcError as err:
            raise error_from_rpc(err, self._target) from None

    def checkpoints(self) -> list[str]:
        """The service serves only the latest checkpoint: no others."""
        return []

    def entries(self, start: int, end: int) -> Iterator[bytes]:
        """Entries in ``[start, end)``, checking that batches arrive in order."""
        expected = start
        try:
            for batch in self._stub.GetEntries(audit_pb2.GetEntriesRequest(start=start, end=end)):
                if batch.start != expected:
                    raise VerificationError(
                        f"server sent entries from {batch.start}, not {expected}"
                    )
                yield from batch.entries
                expected += len(batch.entries)
        except grpc.RpcError as err:
            raise error_from_rpc(err, self._target) from None

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """The audit path of entry ``index`` in the tree of ``size``."""
        request = audit_pb2.GetInclusionProofRequest(index=index, tree_size=size)
        try:
            return list(self._stub.GetInclusionProof(request).hashes)
        except grpc.RpcError as err:
            raise error_from_rpc(err, self._target) from None

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """The consistency proof from ``size1`` to ``size2``."""
        request = audit_pb2.GetConsistencyProofRequest(size1=size1, size2=size2)
        try:
            return list(self._stub.GetConsistencyProof(request).hashes)
        except grpc.RpcError as err:
            raise error_from_rpc(err, self._target) from None
