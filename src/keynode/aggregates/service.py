"""gRPC servicer for keynode.v1.Aggregates: a thin translation to :class:`AggregateEngine`.

Every call is authorised like the Matching service: the partner is the one in the
caller's mTLS certificate, enrolled with the broker, and a session opens only with a
grant for ``aggregate.segment``, whose ``min_cohort`` is the threshold ``k``. Grants
are short-lived (minutes) and a million records take longer, so ``Finish`` needs a
second, fresh grant: the release is decided and logged under it, at the partner's level
at that moment. Noise
(``epsilon``) is accepted only from a partner whose level also allows ``dp.aggregate``.
The release is logged by the broker *before* the result leaves, with the partner's
record count as input and the smallest released segment's shared-record count as the
released cohort; a result whose every segment is suppressed therefore fails the cohort
rule and is refused (logged as ``below_cohort``).

The second direction (``OpenValuesSession`` to ``FinishValues``, needing grants for
``aggregate.keynode_values``) runs the key node's :class:`ValuesEngine` as the value
holder: the partner's returned aggregate is decrypted here and its release logged, with
the partner's identifier count as input and the shared count as released cohort,
before the sum and count leave.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from typing import Any, Protocol

import grpc

from keynode import pki
from keynode.aggregates.engine import AggregateEngine, SessionShape
from keynode.aggregates.values import ValuesEngine
from keynode.errors import LimitExceeded, NotFound, PolicyDenied, ProtocolError
from keynode.transport.auth import Authorizer
from keynode.transport.status import grpc_errors
from keynode.v1 import aggregates_pb2 as pb
from keynode.v1 import aggregates_pb2_grpc as pb_grpc

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Aggregates"].full_name
#: The policy operation a session needs a grant for, and the one noise additionally needs.
OPERATION = "aggregate.segment"
NOISE_OPERATION = "dp.aggregate"
#: The policy operation of the second direction: the key node's values summed.
VALUES_OPERATION = "aggregate.keynode_values"


class AggregateGate(Protocol):
    """The broker, as the Aggregates service sees it."""

    def check_enrolled_certificate(self, peer: pki.PeerIdentity) -> None: ...

    def admit(self, token: bytes, partner: str, operation: str) -> Any: ...

    def release(
        self, grant: Any, *, input_count: int, released_count: int, params: bytes
    ) -> None: ...

    def allowed_operations(self, partner: str) -> list[str]: ...


def _epsilon(request: pb.OpenAggregateRequest) -> Fraction | None:
    if request.epsilon_numerator == 0:
        return None
    if request.epsilon_denominator == 0:
        raise ProtocolError("epsilon needs a positive denominator")
    return Fraction(request.epsilon_numerator, request.epsilon_denominator)


class AggregatesServicer(pb_grpc.AggregatesServicer):
    """Translates Aggregates calls for one :class:`AggregateEngine`, under the broker."""

    def __init__(
        self, engine: AggregateEngine, *, authorizer: Authorizer, gate: AggregateGate
    ) -> None:
        self.engine = engine
        self._auth = authorizer
        self._gate = gate

    def _owner(self, context: grpc.ServicerContext, session_id: str) -> None:
        caller = self._auth.require(context, {pki.PARTNER}).party
        if self.engine.session_partner(session_id) != caller:
            raise PolicyDenied("this session belongs to another partner")

    @grpc_errors
    def OpenSession(
        self, request: pb.OpenAggregateRequest, context: grpc.ServicerContext
    ) -> pb.OpenAggregateResponse:
        peer = self._auth.require(context, {pki.PARTNER}, party=request.partner or None)
        self._gate.check_enrolled_certificate(peer)
        partner = peer.party
        epsilon = _epsilon(request)
        grant = self._gate.admit(request.grant, partner, OPERATION)
        if epsilon is not None and NOISE_OPERATION not in self._gate.allowed_operations(partner):
            raise PolicyDenied(f"noise needs a level that allows {NOISE_OPERATION}")
        if request.record_count > grant.max_set_size:
            raise LimitExceeded(f"{request.record_count} records exceed the grant's cap")
        shape = SessionShape(
            record_count=request.record_count,
            record_width=request.record_width,
            column_bits=tuple(request.column_bits),
            public_key=request.public_key,
            epsilon=epsilon,
        )
        opened = self.engine.open_session(partner, request.profile_id, shape, k=grant.min_cohort)
        return pb.OpenAggregateResponse(
            session_id=opened.session_id,
            segments=opened.segments,
            key_node_element_count=opened.key_node_elements,
            max_chunk_elements=opened.max_chunk_elements,
            max_chunk_records=opened.max_chunk_records,
            min_cohort=opened.k,
        )

    @grpc_errors
    def DownloadRequest(
        self, request: pb.AggregateSessionRef, context: grpc.ServicerContext
    ) -> Iterator[pb.LabelledChunk]:
        self._owner(context, request.session_id)
        chunks = self.engine.request_chunks(request.session_id)
        for sequence, (elements, labels, key) in enumerate(chunks):
            yield pb.LabelledChunk(
                session_id=request.session_id,
                sequence=sequence,
                elements=elements,
                labels=labels,
                label_key=key,
            )

    @grpc_errors
    def UploadHeader(
        self, request_iterator: Iterator[pb.LabelledChunk], context: grpc.ServicerContext
    ) -> pb.UploadHeaderResponse:
        first = next(request_iterator, None)
        if first is None:
            raise ProtocolError("an upload needs at least one chunk")
        self._owner(context, first.session_id)

        def chunks() -> Iterator[tuple[int, bytes, bytes]]:
            for chunk in _same_session(first, request_iterator):
                yield chunk.sequence, chunk.elements, chunk.labels

        received = self.engine.upload_header(first.session_id, chunks())
        return pb.UploadHeaderResponse(received_elements=received)

    @grpc_errors
    def UploadRecords(
        self, request_iterator: Iterator[pb.RecordChunk], context: grpc.ServicerContext
    ) -> pb.UploadRecordsResponse:
        first = next(request_iterator, None)
        if first is None:
            raise ProtocolError("an upload needs at least one chunk")
        self._owner(context, first.session_id)

        def chunks() -> Iterator[tuple[int, bytes, bytes]]:
            for chunk in _same_session(first, request_iterator):
                yield chunk.sequence, chunk.elements, chunk.ciphertexts

        received = self.engine.upload_records(first.session_id, chunks())
        return pb.UploadRecordsResponse(received_records=received)

    @grpc_errors
    def Finish(
        self, request: pb.FinishRequest, context: grpc.ServicerContext
    ) -> pb.AggregateResult:
        self._owner(context, request.session_id)
        partner = self.engine.session_partner(request.session_id)
        grant = self._gate.admit(request.grant, partner, OPERATION)
        release = self.engine.finish(request.session_id)
        # Logged before anything leaves; refused (below_cohort) when all are suppressed.
        self._gate.release(
            grant,
            input_count=release.input_count,
            released_count=release.smallest_released,
            params=f"aggregate\x00{request.session_id}\x00{len(release.released)}".encode(),
        )
        return pb.AggregateResult(
            released=[pb.SegmentCiphertext(segment=s, ciphertext=c) for s, c in release.released],
            suppressed=release.suppressed,
        )

    @grpc_errors
    def CloseSession(
        self, request: pb.AggregateSessionRef, context: grpc.ServicerContext
    ) -> pb.CloseAggregateResponse:
        self._owner(context, request.session_id)
        self.engine.close(request.session_id)
        return pb.CloseAggregateResponse()

    # -- the second direction: the key node's values over the partner's overlap --------

    def _values(self) -> ValuesEngine:
        if self.engine.values is None:
            raise NotFound("this key node serves no value column")
        return self.engine.values

    def _values_owner(self, context: grpc.ServicerContext, session_id: str) -> ValuesEngine:
        values = self._values()
        caller = self._auth.require(context, {pki.PARTNER}).party
        if values.session_partner(session_id) != caller:
            raise PolicyDenied("this session belongs to another partner")
        return values

    @grpc_errors
    def OpenValuesSession(
        self, request: pb.OpenValuesRequest, context: grpc.ServicerContext
    ) -> pb.OpenValuesResponse:
        peer = self._auth.require(context, {pki.PARTNER}, party=request.partner or None)
        self._gate.check_enrolled_certificate(peer)
        values = self._values()
        grant = self._gate.admit(request.grant, peer.party, VALUES_OPERATION)
        if request.element_count > grant.max_set_size:
            raise LimitExceeded(f"{request.element_count} identifiers exceed the grant's cap")
        opened = values.open_session(
            peer.party, request.profile_id, request.element_count, k=grant.min_cohort
        )
        return pb.OpenValuesResponse(
            session_id=opened.session_id,
            public_key=opened.public_key,
            column_bits=opened.column_bits,
            record_count=opened.record_count,
            record_width=opened.record_width,
            max_chunk_elements=opened.max_chunk_elements,
            min_cohort=opened.k,
        )

    @grpc_errors
    def UploadValuesRequest(
        self, request_iterator: Iterator[pb.LabelledChunk], context: grpc.ServicerContext
    ) -> pb.UploadHeaderResponse:
        first = next(request_iterator, None)
        if first is None:
            raise ProtocolError("an upload needs at least one chunk")
        values = self._values_owner(context, first.session_id)
        chunks = ((c.sequence, c.elements) for c in _same_session(first, request_iterator))
        received = values.upload_request(first.session_id, chunks)
        return pb.UploadHeaderResponse(received_elements=received)

    @grpc_errors
    def DownloadValuesHeader(
        self, request: pb.AggregateSessionRef, context: grpc.ServicerContext
    ) -> Iterator[pb.LabelledChunk]:
        values = self._values_owner(context, request.session_id)
        for sequence, elements in enumerate(values.header_chunks(request.session_id)):
            yield pb.LabelledChunk(
                session_id=request.session_id, sequence=sequence, elements=elements
            )

    @grpc_errors
    def DownloadValueRecords(
        self, request: pb.AggregateSessionRef, context: grpc.ServicerContext
    ) -> Iterator[pb.RecordChunk]:
        values = self._values_owner(context, request.session_id)
        for sequence, chunk in enumerate(values.record_chunks(request.session_id)):
            yield pb.RecordChunk(
                session_id=request.session_id,
                sequence=sequence,
                elements=chunk.elements,
                ciphertexts=chunk.ciphertexts,
            )

    @grpc_errors
    def FinishValues(
        self, request: pb.FinishValuesRequest, context: grpc.ServicerContext
    ) -> pb.ValuesResult:
        values = self._values_owner(context, request.session_id)
        partner = values.session_partner(request.session_id)
        grant = self._gate.admit(request.grant, partner, VALUES_OPERATION)
        release = values.finish(request.session_id, request.ciphertext or None)
        # Logged before the plaintext leaves; refused (below_cohort) under k.
        self._gate.release(
            grant,
            input_count=release.input_count,
            released_count=release.count,
            params=f"aggregate.keynode_values\x00{request.session_id}".encode(),
        )
        return pb.ValuesResult(sums=release.sums, count=release.count)


def _same_session(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    for chunk in rest:
        if chunk.session_id != first.session_id:
            raise ProtocolError("all chunks of an upload must name the same session")
        yield chunk


def add_to_server(server: grpc.Server, servicer: AggregatesServicer) -> None:
    pb_grpc.add_AggregatesServicer_to_server(servicer, server)
