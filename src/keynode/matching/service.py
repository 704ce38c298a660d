"""gRPC servicer for keynode.v1.Matching: a thin translation to :class:`MatchingEngine`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import grpc

from keynode.errors import ProtocolError
from keynode.matching.engine import MatchingEngine
from keynode.protocols.psi import Variant
from keynode.transport.status import grpc_errors
from keynode.v1 import matching_pb2 as pb
from keynode.v1 import matching_pb2_grpc as pb_grpc

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Matching"].full_name

_VARIANTS = {
    pb.PSI_VARIANT_CARDINALITY: Variant.CARDINALITY,
    pb.PSI_VARIANT_MEMBERSHIP: Variant.MEMBERSHIP,
}


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
    """Translates Matching calls for one :class:`MatchingEngine`."""

    def __init__(self, engine: MatchingEngine) -> None:
        self.engine = engine

    @grpc_errors
    def OpenSession(
        self, request: pb.OpenSessionRequest, context: grpc.ServicerContext
    ) -> pb.OpenSessionResponse:
        variant = _VARIANTS.get(request.variant)
        if variant is None:
            raise ProtocolError("the request must name a PSI variant")
        if request.record_count == 0:
            raise ProtocolError("a session needs at least one record")
        opened = self.engine.open_session(
            request.partner, variant, request.profile_id, request.record_count, request.record_width
        )
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
        received = self.engine.upload(first.session_id, _chunks(first, request_iterator))
        return pb.UploadSummary(received_elements=received)

    @grpc_errors
    def DownloadKeyNodeSet(
        self, request: pb.SessionRef, context: grpc.ServicerContext
    ) -> Iterator[pb.ElementChunk]:
        yield from _stream(request.session_id, self.engine.key_node_chunks(request.session_id))

    @grpc_errors
    def DownloadReblinded(
        self, request: pb.SessionRef, context: grpc.ServicerContext
    ) -> Iterator[pb.ElementChunk]:
        yield from _stream(request.session_id, self.engine.reblinded_chunks(request.session_id))

    @grpc_errors
    def CloseSession(
        self, request: pb.SessionRef, context: grpc.ServicerContext
    ) -> pb.CloseSessionResponse:
        self.engine.close(request.session_id)
        return pb.CloseSessionResponse()


def add_to_server(server: grpc.Server, engine: MatchingEngine) -> None:
    pb_grpc.add_MatchingServicer_to_server(MatchingServicer(engine), server)
