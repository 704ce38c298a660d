"""The broker's HashedOverlap service: open matches, relay public keys, match, release.

:class:`HashedMatches` holds the open matches and the key node hasher's registration
(no gRPC); :class:`HashedOverlapServicer` translates calls. Partners call with their
enrolled partner certificate and a grant for ``overlap.size.hashed`` or
``overlap.membership.hashed``; the key node's hasher calls with a key-node certificate.
The release is logged under the grant just before the result leaves, with the partner's
level at that moment; then both uploads are deleted. The protocol and what each side
learns: :mod:`keynode.broker.hashed`.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import grpc

from keynode import pki
from keynode.broker.core import Broker
from keynode.broker.hashed import (
    CHUNK_DIGESTS,
    HashedMatch,
    HashedResult,
    Side,
    check_public_key,
)
from keynode.errors import (
    LimitExceeded,
    NotFound,
    PolicyDenied,
    ProfileMismatch,
    ProtocolError,
    Unavailable,
)
from keynode.policy import Grant
from keynode.transport.auth import Authorizer
from keynode.transport.status import grpc_errors
from keynode.v1 import hashed_pb2 as pb
from keynode.v1 import hashed_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["HashedOverlap"].full_name
SIZE_OPERATION = "overlap.size.hashed"
MEMBERSHIP_OPERATION = "overlap.membership.hashed"


@dataclass(frozen=True)
class HashedLimits:
    """Caps of the hashed overlap. The defaults suit a laptop-sized key node."""

    #: Most records per match: a membership reply (3-byte varints below 2**21) must fit
    #: in one 4 MiB message.
    max_records: int = 1_200_000
    #: Most keys per record.
    max_record_width: int = 8
    #: Most digests either side may upload (32 bytes each, held until the match ends).
    max_digests: int = 4_000_000
    #: Most matches open at once, all partners together.
    max_matches: int = 8
    #: Most digests per chunk (2 MiB).
    max_chunk_digests: int = CHUNK_DIGESTS
    #: A match whose result has not been fetched within this many seconds is dropped.
    match_ttl_s: float = 600.0


@dataclass(frozen=True)
class PendingMatch:
    """What the key node's hasher needs to take part in a match."""

    match_id: str
    partner: str
    partner_public_key: bytes


@dataclass
class _Open:
    pending: PendingMatch
    key_node_public_key: bytes
    grant: Grant
    membership: bool
    match: HashedMatch
    opened_at: float


@dataclass
class _Subscription:
    public_key: bytes
    inbox: queue.SimpleQueue[PendingMatch | None] = field(default_factory=queue.SimpleQueue)


class HashedMatches:
    """The broker's open hashed matches and the subscribed key node hashers. Thread-safe."""

    def __init__(
        self,
        profile_id: str,
        *,
        limits: HashedLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.profile_id = profile_id
        self.limits = limits or HashedLimits()
        self._clock = clock
        self._lock = threading.Condition()
        self._matches: dict[str, _Open] = {}
        self._subscriptions: list[_Subscription] = []

    # -- the key node's hasher -----------------------------------------------------------

    def subscribe(self, public_key: bytes) -> _Subscription:
        """Register a hasher's public key; new matches are announced in its inbox.

        The most recent subscriber's key is the one new matches use. Matches opened under
        this key and still waiting for the key node are announced again (a reconnect).
        """
        subscription = _Subscription(check_public_key(public_key))
        with self._lock:
            self._subscriptions.append(subscription)
            for entry in self._matches.values():
                waiting = not entry.match.complete(Side.KEY_NODE)
                if waiting and entry.key_node_public_key == public_key:
                    subscription.inbox.put(entry.pending)
            self._lock.notify_all()
        return subscription

    def unsubscribe(self, subscription: _Subscription) -> None:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)
        subscription.inbox.put(None)

    @property
    def hasher_registered(self) -> bool:
        """Whether a hasher is subscribed (new matches can be served)."""
        with self._lock:
            return bool(self._subscriptions)

    def wait_for_hasher(self, timeout_s: float) -> bool:
        """Whether a hasher has subscribed within ``timeout_s`` seconds."""
        with self._lock:
            return self._lock.wait_for(lambda: bool(self._subscriptions), timeout_s)

    # -- matches -----------------------------------------------------------------------

    def check_request(self, profile_id: str, record_count: int, record_width: int) -> bytes:
        """Refuse a request the key node cannot serve; the key node's public key otherwise."""
        if profile_id != self.profile_id:
            raise ProfileMismatch(
                f"normalisation profile mismatch: the key node uses {self.profile_id!r}, "
                f"the request names {profile_id!r}; both sides must use the same profile"
            )
        limits = self.limits
        if record_count < 1:
            raise ProtocolError("a match needs at least one record")
        if not 1 <= record_width <= limits.max_record_width:
            raise ProtocolError(f"record width must be 1 to {limits.max_record_width}")
        if record_count > limits.max_records or record_count * record_width > limits.max_digests:
            raise LimitExceeded(
                f"{record_count} records x {record_width} keys exceeds this key node's caps "
                f"({limits.max_records} records, {limits.max_digests} digests per match)"
            )
        with self._lock:
            self._expire_locked()
            if len(self._matches) >= limits.max_matches:
                raise LimitExceeded("too many open hashed matches; try again later")
            return self._hasher_key_locked()

    def _hasher_key_locked(self) -> bytes:
        if not self._subscriptions:
            raise Unavailable("the key node's hasher is not running; try again later")
        return self._subscriptions[-1].public_key

    def open(
        self,
        partner: str,
        partner_public_key: bytes,
        record_count: int,
        record_width: int,
        *,
        grant: Grant,
        membership: bool,
    ) -> tuple[str, bytes]:
        """Start a match (request already checked) and tell the hasher; (id, key node key)."""
        check_public_key(partner_public_key)
        match = HashedMatch(
            record_count,
            record_width,
            max_key_node_digests=self.limits.max_digests,
            max_chunk_digests=self.limits.max_chunk_digests,
        )
        with self._lock:
            if len(self._matches) >= self.limits.max_matches:
                raise LimitExceeded("too many open hashed matches; try again later")
            key_node_public_key = self._hasher_key_locked()
            pending = PendingMatch(secrets.token_urlsafe(18), partner, partner_public_key)
            self._matches[pending.match_id] = _Open(
                pending, key_node_public_key, grant, membership, match, self._clock()
            )
            for subscription in self._subscriptions:
                if subscription.public_key == key_node_public_key:
                    subscription.inbox.put(pending)
        log.info(
            "hashed match %s opened for %s (%d records)", pending.match_id, partner, record_count
        )
        return pending.match_id, key_node_public_key

    def _get(self, match_id: str) -> _Open:
        with self._lock:
            self._expire_locked()
            entry = self._matches.get(match_id)
        if entry is None:
            raise NotFound("unknown or expired hashed match")
        return entry

    def partner_of(self, match_id: str) -> str:
        return self._get(match_id).pending.partner

    def upload(self, match_id: str, side: Side, chunks: Iterator[tuple[int, bytes]]) -> int:
        """Consume ``side``'s ``(sequence, digests)`` chunks; any error ends the match."""
        match = self._get(match_id).match
        match.begin(side)
        try:
            for sequence, packed in chunks:
                match.accept(side, sequence, packed)
            return match.finish(side)
        except BaseException:
            self.drop(match_id)
            raise

    def take_result(self, match_id: str) -> tuple[HashedResult, Grant] | None:
        """The result and its grant, once both uploads are in (None while pending).

        The match leaves the registry and its digests are deleted before this returns,
        so a result is computed and handed out once.
        """
        with self._lock:
            self._expire_locked()
            entry = self._matches.get(match_id)
            if entry is None:
                raise NotFound("unknown or expired hashed match")
            if not entry.match.ready:
                return None
            del self._matches[match_id]
        try:
            return entry.match.result(entry.membership), entry.grant
        finally:
            entry.match.discard()

    def drop(self, match_id: str) -> None:
        """End a match and delete its digests (idempotent)."""
        with self._lock:
            entry = self._matches.pop(match_id, None)
        if entry is not None:
            entry.match.discard()

    def close_partner_matches(self, partner: str) -> int:
        """End every match of ``partner`` (resignation); returns how many."""
        with self._lock:
            ids = [m for m, e in self._matches.items() if e.pending.partner == partner]
        for match_id in ids:
            self.drop(match_id)
        return len(ids)

    def open_matches(self) -> list[tuple[str, str, float]]:
        """(match id, partner, age in seconds) of every open match."""
        now = self._clock()
        with self._lock:
            self._expire_locked()
            return [(m, e.pending.partner, now - e.opened_at) for m, e in self._matches.items()]

    def _expire_locked(self) -> None:
        deadline = self._clock() - self.limits.match_ttl_s
        for match_id in [m for m, e in self._matches.items() if e.opened_at < deadline]:
            self._matches.pop(match_id).match.discard()
            log.info("hashed match %s expired; its uploads are deleted", match_id)


def _chunks(first: pb.HashChunk, rest: Iterator[pb.HashChunk]) -> Iterator[tuple[int, bytes]]:
    yield first.sequence, first.digests
    for chunk in rest:
        if chunk.match_id != first.match_id:
            raise ProtocolError("all chunks of an upload must name the same match")
        yield chunk.sequence, chunk.digests


class HashedOverlapServicer(pb_grpc.HashedOverlapServicer):
    """Translates HashedOverlap calls; every call is authorised from its certificate."""

    #: How often a watch stream wakes to notice that its call has ended.
    WATCH_POLL_S = 1.0

    def __init__(self, matches: HashedMatches, broker: Broker, authorizer: Authorizer) -> None:
        self._matches = matches
        self._broker = broker
        self._auth = authorizer

    def _partner(self, context: grpc.ServicerContext) -> str:
        peer = self._auth.require(context, {pki.PARTNER})
        self._broker.check_enrolled_certificate(peer)
        return peer.party

    def _owner(self, context: grpc.ServicerContext, match_id: str) -> None:
        if self._matches.partner_of(match_id) != self._partner(context):
            raise PolicyDenied("this match belongs to another partner")

    @grpc_errors
    def OpenHashedMatch(
        self, request: pb.OpenHashedMatchRequest, context: grpc.ServicerContext
    ) -> pb.OpenHashedMatchResponse:
        partner = self._partner(context)
        count, width = request.record_count, request.record_width
        self._matches.check_request(request.profile_id, count, width)
        partner_key = check_public_key(request.partner_public_key)
        operation = MEMBERSHIP_OPERATION if request.membership else SIZE_OPERATION
        grant = self._broker.admit(request.grant, partner, operation)
        match_id, key_node_key = self._matches.open(
            partner, partner_key, count, width, grant=grant, membership=request.membership
        )
        return pb.OpenHashedMatchResponse(match_id=match_id, key_node_public_key=key_node_key)

    @grpc_errors
    def UploadHashes(
        self, request_iterator: Iterator[pb.HashChunk], context: grpc.ServicerContext
    ) -> pb.UploadHashesResponse:
        peer = self._auth.require(context, {pki.PARTNER, pki.KEY_NODE})
        first = next(request_iterator, None)
        if first is None:
            raise ProtocolError("an upload needs at least one chunk")
        if peer.role == pki.PARTNER:
            self._owner(context, first.match_id)
            side = Side.PARTNER
        else:
            side = Side.KEY_NODE
        received = self._matches.upload(first.match_id, side, _chunks(first, request_iterator))
        return pb.UploadHashesResponse(received=received)

    @grpc_errors
    def GetHashedMatchResult(
        self, request: pb.HashedMatchRef, context: grpc.ServicerContext
    ) -> pb.HashedMatchResult:
        self._owner(context, request.match_id)
        taken = self._matches.take_result(request.match_id)
        if taken is None:
            return pb.HashedMatchResult(pending=True)
        result, grant = taken
        # The cohort is the partner's input, as for the Matching service: the broker must
        # not let the overlap itself decide whether the overlap may be released.
        self._broker.release(
            grant,
            input_count=result.records,
            released_count=result.records,
            params=f"hashed\x00{request.match_id}\x00{grant.operation}".encode(),
        )
        return pb.HashedMatchResult(
            overlap=result.overlap, shared_records=result.shared_records or ()
        )

    @grpc_errors
    def WatchHashedMatches(
        self, request: pb.WatchHashedMatchesRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.PendingHashedMatch]:
        self._auth.require(context, {pki.KEY_NODE})
        subscription = self._matches.subscribe(request.key_node_public_key)
        context.add_callback(lambda: self._matches.unsubscribe(subscription))
        try:
            while context.is_active():
                try:
                    pending = subscription.inbox.get(timeout=self.WATCH_POLL_S)
                except queue.Empty:
                    continue
                if pending is None:
                    return
                yield pb.PendingHashedMatch(
                    match_id=pending.match_id,
                    partner=pending.partner,
                    partner_public_key=pending.partner_public_key,
                )
        finally:
            self._matches.unsubscribe(subscription)


def add_to_server(server: grpc.Server, servicer: HashedOverlapServicer) -> None:
    pb_grpc.add_HashedOverlapServicer_to_server(servicer, server)
