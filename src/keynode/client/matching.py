"""The partner's side of the Matching service: one call from records to a PSI result."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import grpc

from keynode.client.progress import progress_bar
from keynode.crypto.batch import GroupPool
from keynode.crypto.ristretto255 import ELEMENT_BYTES
from keynode.errors import InputError
from keynode.protocols.psi import PartnerSession, PsiResult, Variant
from keynode.transport.status import error_from_rpc
from keynode.v1 import matching_pb2 as pb
from keynode.v1 import matching_pb2_grpc as pb_grpc

_VARIANTS = {
    Variant.CARDINALITY: pb.PSI_VARIANT_CARDINALITY,
    Variant.MEMBERSHIP: pb.PSI_VARIANT_MEMBERSHIP,
}


class MatchingClient:
    """Runs ECDH-PSI sessions against a key node's Matching service.

    ``unary_timeout_s`` bounds the short calls, ``stream_timeout_s`` each streaming call
    (a million records take a few minutes on a laptop).
    """

    def __init__(
        self,
        channel: grpc.Channel,
        *,
        target: str = "",
        unary_timeout_s: float = 30.0,
        stream_timeout_s: float = 3600.0,
    ) -> None:
        self._stub = pb_grpc.MatchingStub(channel)
        self._target = target
        self._unary_timeout = unary_timeout_s
        self._stream_timeout = stream_timeout_s

    def match(
        self,
        partner: str,
        records: Sequence[Sequence[bytes]],
        profile_id: str,
        variant: Variant,
        pool: GroupPool,
        *,
        grant: bytes = b"",
        show_progress: bool = False,
    ) -> PsiResult:
        """Run one session: upload and download concurrently, then compare locally."""
        if not records:
            raise InputError("there are no records to match")
        session = PartnerSession(records, variant, pool)
        try:
            opened = self._stub.OpenSession(
                pb.OpenSessionRequest(
                    partner=partner,
                    variant=_VARIANTS[variant],
                    profile_id=profile_id,
                    record_count=len(records),
                    record_width=session.width,
                    grant=grant,
                ),
                timeout=self._unary_timeout,
            )
        except grpc.RpcError as err:
            raise error_from_rpc(err, self._target) from None
        ref = pb.SessionRef(session_id=opened.session_id)
        bars = _Bars(show_progress, len(records), opened.key_node_element_count)
        try:
            with ThreadPoolExecutor(1, thread_name_prefix="keynode-upload") as uploader:
                upload = uploader.submit(
                    self._stub.UploadBlinded,
                    _upload_chunks(session, opened, bars),
                    timeout=self._stream_timeout,
                )
                try:
                    for chunk in self._stub.DownloadKeyNodeSet(ref, timeout=self._stream_timeout):
                        session.add_key_node_elements(chunk.elements)
                        bars.key_node.update(len(chunk.elements) // ELEMENT_BYTES)
                except grpc.RpcError:
                    # A failed upload ends the session; report that cause, not its echo.
                    upload.exception()
                    raise
                upload.result()
            for chunk in self._stub.DownloadReblinded(ref, timeout=self._stream_timeout):
                session.add_reblinded(chunk.elements)
            self._stub.CloseSession(ref, timeout=self._unary_timeout)
        except grpc.RpcError as err:
            raise error_from_rpc(err, self._target) from None
        finally:
            bars.close()
        return session.result()


def _upload_chunks(
    session: PartnerSession, opened: pb.OpenSessionResponse, bars: _Bars
) -> Iterator[pb.ElementChunk]:
    for sequence, elements in enumerate(session.blinded_chunks(opened.max_chunk_elements)):
        yield pb.ElementChunk(session_id=opened.session_id, sequence=sequence, elements=elements)
        bars.upload.update(len(elements) // ELEMENT_BYTES // session.width)


class _Bars:
    """Progress bars for the two concurrent streams (silent unless asked)."""

    def __init__(self, show: bool, records: int, key_node_elements: int) -> None:
        self.upload = progress_bar(show, records, "blind + upload", "rec", 0)
        self.key_node = progress_bar(show, key_node_elements, "key node set", "el", 1)

    def close(self) -> None:
        self.upload.close()
        self.key_node.close()
