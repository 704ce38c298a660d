"""gRPC servicer for keynode.v1.Matching: a thin translation to :class:`MatchingEngine`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import grpc

from keynode import pki
from keynode.errors import PolicyDenied, ProtocolError
from keynode.matching.engine import MatchingEngine
from keynode.protocols.psi import Variant
from keynode.transport.auth import Authorizer
from keynode.transport.status import grpc_errors
from keynode.v1 import matching_pb2 as pb
from keynode.v1 import matching_pb2_grpc as pb_grpc

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Matching"].full_name

_VARIANTS = {
    pb.PSI_VARIANT_CARDINALITY: Variant.CARDINALITY,
    pb.PSI_VARIANT_MEMBERSHIP: Variant.MEMBERSHIP,
}

#: The policy operation each variant needs a grant for.
OPERATIONS = {Variant.CARDINALITY: "overlap.size", Variant.MEMBERSHIP: "overlap.membership"}


class SessionGate(Protocol):
    """The broker, as the Matching service sees it: grants in, releases logged."""

    def check_enrolled_certificate(self, peer: pki.PeerIdentity) -> None: ...

    def admit(self, token: bytes, partner: str, operation: str) -> Any: ...

    def release(
        self, grant: Any, *, input_count: int, released_count: int, params: bytes
    ) -> None: ...


def _chunks(first: pb.ElementChunk, rest: Iterator[pb.ElementChunk]) -> Iterator[tuple[int, bytes]]:
    yield first.sequence, first.elements
    for chunk in rest:
        if chunk.session_id != first.session_id:
            raise ProtocolError("all chunks of an upload must name the same session")
        yield chunk.sequence, chunk.elements


def _stream(session_id: str, chunks: Iterable[bytes]) -> Iterator[pb.ElementChunk]:
    for sequence, elements in enumerate(chunks):
        yield pb.ElementChunk(session_id=session_id, sequence=sequence, elements=elements)


class MatchingServicer(pb_grpc.MatchingServicer):
    """Translates Matching calls for one :class:`MatchingEngine`.

    With an ``authorizer`` the partner is the one in the caller's certificate and every
    call on a session must come from its partner; with a ``gate`` (the broker) a session
    opens only with a valid grant for its variant, and its release is logged before any
    data leaves. Without them (loopback demos and benchmarks) the request names the
    partner and no policy applies.
    """

    def __init__(
        self,
        engine: MatchingEngine,
        *,
        authorizer: Authorizer | None = None,
        gate: SessionGate | None = None,
    ) -> None:
        if gate is not None and authorizer is None:
            raise ValueError("a policy gate needs an authorizer: grants are bound to identities")
        self.engine = engine
        self._auth = authorizer
        self._gate = gate

    def _caller(self, context: grpc.ServicerContext, claimed: str) -> str:
        if self._auth is None:
            return claimed
        peer = self._auth.require(context, {pki.PARTNER}, party=claimed or None)
        if self._gate is not None:
            self._gate.check_enrolled_certificate(peer)
        return peer.party

    def _owner(self, context: grpc.ServicerContext, session_id: str) -> None:
        if self._auth is not None:
            caller = self._auth.require(context, {pki.PARTNER}).party
            if self.engine.session_partner(session_id) != caller:
                raise PolicyDenied("this session belongs to another partner")

    @grpc_errors
    def OpenSession(
        self, request: pb.OpenSessionRequest, context: grpc.ServicerContext
    ) -> pb.OpenSessionResponse:
        variant = _VARIANTS.get(request.variant)
        if variant is None:
            raise ProtocolError("the request must name a PSI variant")
        if request.record_count == 0:
            raise ProtocolError("a session needs at least one record")
        partner = self._caller(context, request.partner)
        if self._gate is not None:
            grant = self._gate.admit(request.grant, partner, OPERATIONS[variant])
        opened = self.engine.open_session(
            partner, variant, request.profile_id, request.record_count, request.record_width
        )
        if self._gate is not None:
            # Logged before any data leaves; the cohort is the partner's input set, since
            # the key node cannot know (and must not learn) the overlap it releases.
            count = request.record_count
            try:
                self._gate.release(
                    grant,
                    input_count=count,
                    released_count=count,
                    params=f"psi\x00{opened.session_id}\x00{variant.value}".encode(),
                )
            except BaseException:
                self.engine.close(opened.session_id)
                raise
        return pb.OpenSessionResponse(
            session_id=opened.session_id,
            key_node_element_count=opened.key_node_elements,
            max_chunk_elements=opened.max_chunk_elements,
        )

    @grpc_errors
    def UploadBlinded(
        self, request_iterator: Iterator[pb.ElementChunk], context: grpc.ServicerContext
    ) -> pb.UploadSummary:
        first = next(request_iterator, None)
        if first is None:
            raise ProtocolError("an upload needs at least one chunk")
        self._owner(context, first.session_id)
        received = self.engine.upload(first.session_id, _chunks(first, request_iterator))
        return pb.UploadSummary(received_elements=received)

    @grpc_errors
    def DownloadKeyNodeSet(
        self, request: pb.SessionRef, context: grpc.ServicerContext
    ) -> Iterator[pb.ElementChunk]:
        self._owner(context, request.session_id)
        yield from _stream(request.session_id, self.engine.key_node_chunks(request.session_id))

    @grpc_errors
    def DownloadReblinded(
        self, request: pb.SessionRef, context: grpc.ServicerContext
    ) -> Iterator[pb.ElementChunk]:
        self._owner(context, request.session_id)
        yield from _stream(request.session_id, self.engine.reblinded_chunks(request.session_id))

    @grpc_errors
    def CloseSession(
        self, request: pb.SessionRef, context: grpc.ServicerContext
    ) -> pb.CloseSessionResponse:
        self._owner(context, request.session_id)
        self.engine.close(request.session_id)
        return pb.CloseSessionResponse()


def add_to_server(server: grpc.Server, servicer: MatchingServicer) -> None:
    pb_grpc.add_MatchingServicer_to_server(servicer, server)
