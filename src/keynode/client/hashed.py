"""Both ends of the hashed overlap that talk to the broker: the partner and the key node.

:class:`HashedOverlapClient` is the partner's one call from records to a result;
:class:`KeyNodeHasher` is the key node's thread that answers every match with its own
digests. Only these two ever hold the per-match key; the broker sees digests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

import grpc
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from keynode.broker.hashed import (
    CHUNK_DIGESTS,
    DIGEST_BYTES,
    HashedResult,
    agree_key,
    digest_records,
    digest_set,
    public_key_bytes,
)
from keynode.errors import InputError, KeynodeError, Unavailable
from keynode.transport.status import error_from_rpc
from keynode.v1 import hashed_pb2 as pb
from keynode.v1 import hashed_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)


def _stream(match_id: str, packed: Iterable[bytes]) -> Iterator[pb.HashChunk]:
    for sequence, digests in enumerate(packed):
        yield pb.HashChunk(match_id=match_id, sequence=sequence, digests=digests)


def _pieces(packed: bytes, max_digests: int = CHUNK_DIGESTS) -> Iterator[bytes]:
    step = max_digests * DIGEST_BYTES
    for start in range(0, len(packed), step):
        yield packed[start : start + step]


class HashedOverlapClient:
    """A partner's hashed overlap against a key node's broker.

    ``wait_s`` bounds how long :meth:`match` polls for the key node's side once the
    partner's upload is in; polling starts every ``poll_s`` and backs off to 0.5 s.
    """

    def __init__(
        self,
        channel: grpc.Channel,
        *,
        target: str = "",
        unary_timeout_s: float = 30.0,
        stream_timeout_s: float = 600.0,
        wait_s: float = 120.0,
        poll_s: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stub = pb_grpc.HashedOverlapStub(channel)
        self._target = target
        self._unary_timeout = unary_timeout_s
        self._stream_timeout = stream_timeout_s
        self._wait = wait_s
        self._poll = poll_s
        self._clock = clock

    def match(
        self,
        records: Sequence[Sequence[bytes]],
        profile_id: str,
        grant: bytes,
        membership: bool = False,
    ) -> HashedResult:
        """Open a match, upload this partner's digests, and wait for what its level allows."""
        if not records:
            raise InputError("there are no records to match")
        width = max(len(r) for r in records)
        private_key = X25519PrivateKey.generate()
        try:
            opened = self._stub.OpenHashedMatch(
                pb.OpenHashedMatchRequest(
                    grant=grant,
                    partner_public_key=public_key_bytes(private_key),
                    record_count=len(records),
                    record_width=width,
                    profile_id=profile_id,
                    membership=membership,
                ),
                timeout=self._unary_timeout,
            )
            key = agree_key(private_key, opened.key_node_public_key, opened.match_id)
            per_chunk = max(1, CHUNK_DIGESTS // width)
            digests = (
                digest_records(key, records[start : start + per_chunk], width)
                for start in range(0, len(records), per_chunk)
            )
            self._stub.UploadHashes(_stream(opened.match_id, digests), timeout=self._stream_timeout)
            reply = self._wait_for_result(opened.match_id)
        except grpc.RpcError as err:
            raise error_from_rpc(err, self._target) from None
        return HashedResult(
            records=len(records),
            overlap=reply.overlap,
            shared_records=tuple(reply.shared_records) if membership else None,
        )

    def _wait_for_result(self, match_id: str) -> pb.HashedMatchResult:
        deadline = self._clock() + self._wait
        pause = self._poll
        ref = pb.HashedMatchRef(match_id=match_id)
        while True:
            reply: pb.HashedMatchResult = self._stub.GetHashedMatchResult(
                ref, timeout=self._unary_timeout
            )
            if not reply.pending:
                return reply
            if self._clock() + pause > deadline:
                raise Unavailable(
                    f"the key node did not answer hashed match {match_id} within {self._wait:g} s"
                )
            time.sleep(pause)
            pause = min(0.5, pause * 1.5)


class KeyNodeHasher:
    """The key node's side: watches for matches and uploads its digests for each.

    Holds the key node's X25519 private key (in memory only: a restart makes old
    matches' keys underivable) and its identifiers. Runs in a daemon thread from
    :meth:`start` until :meth:`stop`; a lost watch stream is re-opened after
    ``retry_s``. A match it cannot serve (an invalid partner key) is logged and left to
    expire; the partner's bounded wait reports it.
    """

    def __init__(
        self,
        channel: grpc.Channel,
        keys: Iterable[bytes],
        private_key: X25519PrivateKey,
        *,
        stream_timeout_s: float = 600.0,
        retry_s: float = 1.0,
    ) -> None:
        self._stub = pb_grpc.HashedOverlapStub(channel)
        self._keys = frozenset(keys)
        self._private_key = private_key
        self.public_key = public_key_bytes(private_key)
        self._stream_timeout = stream_timeout_s
        self._retry = retry_s
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watch: grpc.Future | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise InputError("the hasher is already running")
        self._thread = threading.Thread(target=self._run, name="keynode-hasher", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Cancel the watch and wait for the thread (an upload in flight is cancelled)."""
        self._stopping.set()
        with self._lock:
            if self._watch is not None:
                self._watch.cancel()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        request = pb.WatchHashedMatchesRequest(key_node_public_key=self.public_key)
        while True:
            with self._lock:
                if self._stopping.is_set():
                    return
                watch = self._stub.WatchHashedMatches(request)
                self._watch = watch
            try:
                for pending in watch:
                    self.serve(pending.match_id, pending.partner_public_key)
            except grpc.RpcError as err:
                if not self._stopping.is_set():
                    log.warning("hashed-match watch lost (%s); retrying", error_from_rpc(err))
            self._stopping.wait(self._retry)

    def serve(self, match_id: str, partner_public_key: bytes) -> int:
        """Upload the key node's digests for one match; returns how many (0 if refused)."""
        try:
            key = agree_key(self._private_key, partner_public_key, match_id)
            packed = digest_set(key, self._keys)
            reply = self._stub.UploadHashes(
                _stream(match_id, _pieces(packed)), timeout=self._stream_timeout
            )
        except KeynodeError as exc:
            log.warning("hashed match %s not served: %s", match_id, exc)
            return 0
        except grpc.RpcError as err:
            if not self._stopping.is_set():
                log.warning("hashed match %s not served: %s", match_id, error_from_rpc(err))
            return 0
        return int(reply.received)
