"""The key node's matching engine: sessions, limits and caches, with no transport.

The gRPC servicer (:mod:`keynode.matching.service`) is a thin translation of this
class; tests drive it directly. One engine serves one key-node dataset and one
normalisation profile.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from keynode.crypto.batch import GroupPool
from keynode.crypto.ristretto255 import ELEMENT_BYTES
from keynode.errors import LimitExceeded, NotFound, ProfileMismatch, ProtocolError
from keynode.matching.keyring import PartnerKey, PartnerKeyring
from keynode.protocols.psi import (
    PSI_DST,
    KeyNodeSession,
    Variant,
    blind_key_node_set,
    key_node_chunks,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MatchingLimits:
    """Server-side caps. The defaults suit a laptop-sized key node."""

    #: Most elements (records x keys per record) one session may upload.
    max_set_size: int = 5_000_000
    #: Most keys per record.
    max_record_width: int = 8
    #: Most sessions open at once, all partners together.
    max_sessions: int = 32
    #: Most elements per chunk: 65 536 x 32 bytes = 2 MiB, well under the 4 MiB message cap.
    max_chunk_elements: int = 65_536
    #: A session not closed within this many seconds is dropped (abandoned streams).
    session_ttl_s: float = 900.0


@dataclass(frozen=True)
class OpenedSession:
    session_id: str
    key_node_elements: int
    max_chunk_elements: int


@dataclass
class _Session:
    partner: str
    key: PartnerKey
    protocol: KeyNodeSession
    opened_at: float
    uploading: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class MatchingEngine:
    """Runs the key node's side of ECDH-PSI sessions for many partners."""

    def __init__(
        self,
        keys: Sequence[bytes],
        profile_id: str,
        pool: GroupPool,
        *,
        limits: MatchingLimits | None = None,
        keyring: PartnerKeyring | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = sorted(set(keys))
        self.profile_id = profile_id
        self.limits = limits or MatchingLimits()
        self.keyring = keyring or PartnerKeyring()
        self._pool = pool
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        # Hashing to the group is partner-independent, so it is done once, at load;
        # only the blinding is per partner key.
        self._hashed = pool.hash(self._keys, PSI_DST)

    @property
    def key_node_elements(self) -> int:
        return len(self._keys)

    # -- sessions ---------------------------------------------------------------------

    def open_session(
        self, partner: str, variant: Variant, profile_id: str, record_count: int, record_width: int
    ) -> OpenedSession:
        """Check the request against the profile and limits and start a session."""
        if not partner:
            raise ProtocolError("a session needs a partner name")
        if profile_id != self.profile_id:
            raise ProfileMismatch(
                f"normalisation profile mismatch: the key node uses {self.profile_id!r}, "
                f"the request names {profile_id!r}; both sides must use the same profile"
            )
        if not 1 <= record_width <= self.limits.max_record_width:
            raise ProtocolError(f"record width must be 1 to {self.limits.max_record_width}")
        if record_count * record_width > self.limits.max_set_size:
            raise LimitExceeded(
                f"{record_count} records x {record_width} keys exceeds this key node's "
                f"cap of {self.limits.max_set_size} elements per session"
            )
        with self._lock:
            self._expire_locked()
            if len(self._sessions) >= self.limits.max_sessions:
                raise LimitExceeded("too many open sessions; try again later")
            key = self.keyring.key_for(partner)
            session_id = secrets.token_urlsafe(18)
            self._sessions[session_id] = _Session(
                partner=partner,
                key=key,
                protocol=KeyNodeSession(
                    key.scalar,
                    variant,
                    record_count,
                    record_width,
                    self._pool,
                    max_chunk_elements=self.limits.max_chunk_elements,
                ),
                opened_at=self._clock(),
            )
        log.info(
            "session %s opened for %s (%s, %d records)",
            session_id,
            partner,
            variant.value,
            record_count,
        )
        return OpenedSession(session_id, self.key_node_elements, self.limits.max_chunk_elements)

    def _session(self, session_id: str) -> _Session:
        with self._lock:
            self._expire_locked()
            session = self._sessions.get(session_id)
        if session is None:
            raise NotFound("unknown or expired session")
        return session

    def _expire_locked(self) -> None:
        deadline = self._clock() - self.limits.session_ttl_s
        for sid in [s for s, v in self._sessions.items() if v.opened_at < deadline]:
            self._sessions.pop(sid).protocol.abandon()
            log.info("session %s expired", sid)

    def _drop(self, session_id: str) -> None:
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is not None:
            session.protocol.abandon()

    def upload(self, session_id: str, chunks: Iterable[tuple[int, bytes]]) -> int:
        """Consume ``(sequence, packed elements)`` chunks; any error ends the session."""
        session = self._session(session_id)
        with session.lock:
            if session.uploading or session.protocol.upload_complete:
                raise ProtocolError("this session's upload has already started")
            session.uploading = True
        try:
            for sequence, packed in chunks:
                session.protocol.accept_chunk(sequence, packed)
            return session.protocol.finish_upload()
        except BaseException:
            self._drop(session_id)
            raise

    def key_node_chunks(self, session_id: str) -> Iterator[bytes]:
        """The key node's set blinded under the partner's key, shuffled, in chunks."""
        session = self._session(session_id)
        blinded = self.keyring.cached_set(session.key, self._blind_own_set)
        return key_node_chunks(blinded, self.limits.max_chunk_elements)

    def reblinded_chunks(self, session_id: str) -> Iterator[bytes]:
        """The partner's elements re-blinded, once its upload is complete."""
        session = self._session(session_id)
        if not session.protocol.upload_complete:
            raise ProtocolError("the upload for this session is not complete")
        return session.protocol.reblinded_chunks(self.limits.max_chunk_elements)

    def session_partner(self, session_id: str) -> str:
        """The partner a session belongs to."""
        return self._session(session_id).partner

    def close(self, session_id: str) -> None:
        self._session(session_id)
        self._drop(session_id)

    def close_partner_sessions(self, partner: str) -> int:
        """End every session of ``partner`` (key rotation, resignation)."""
        with self._lock:
            ids = [sid for sid, s in self._sessions.items() if s.partner == partner]
        for sid in ids:
            self._drop(sid)
        return len(ids)

    def open_sessions(self) -> list[tuple[str, str, float]]:
        """(session id, partner, age in seconds) of every open session."""
        now = self._clock()
        with self._lock:
            return [(sid, s.partner, now - s.opened_at) for sid, s in self._sessions.items()]

    # -- keys and caches --------------------------------------------------------------

    def rotate_key(self, partner: str) -> None:
        """New scalar for ``partner``: its cached set is destroyed and its sessions end."""
        self.close_partner_sessions(partner)
        self.keyring.rotate(partner)

    def precompute(self, partner: str) -> None:
        """Warm the partner's cached blinded set ahead of its next session."""
        self.keyring.cached_set(self.keyring.key_for(partner), self._blind_own_set)

    def _blind_own_set(self, scalar: bytes) -> bytes:
        blinded = blind_key_node_set(self._hashed, scalar, self._pool)
        assert len(blinded) == len(self._keys) * ELEMENT_BYTES
        return blinded
