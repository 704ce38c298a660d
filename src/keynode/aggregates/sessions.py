"""The session table both aggregate engines keep: capacity, expiry, staged calls.

A session advances through stages, one call at a time: :meth:`SessionTable.claim` hands a
session to exactly one call that expects it at a given stage and refuses a call out of
order or a second one in flight; the engine moves the stage on when the call succeeds
and drops the session when it fails. Sessions older than the TTL expire on the next
lookup, so an abandoned session frees its slot.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from enum import Enum
from typing import Generic, Protocol, TypeVar

from keynode.errors import LimitExceeded, NotFound, ProtocolError

log = logging.getLogger(__name__)


class StagedSession(Protocol):
    """What the table needs of a session (``busy`` it sets; the rest it only reads)."""

    busy: bool

    @property
    def partner(self) -> str: ...

    @property
    def opened_at(self) -> float: ...

    @property
    def stage(self) -> Enum: ...

    @property
    def lock(self) -> threading.Lock: ...


S = TypeVar("S", bound=StagedSession)


class SessionTable(Generic[S]):
    """Open sessions of one kind (``kind`` names them in errors and logs)."""

    def __init__(
        self, kind: str, *, max_sessions: int, ttl_s: float, clock: Callable[[], float]
    ) -> None:
        self._kind = kind
        self._max = max_sessions
        self._ttl = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, S] = {}

    def now(self) -> float:
        return self._clock()

    def check_capacity(self) -> None:
        """Refuse early, before a caller does expensive per-session work."""
        with self._lock:
            self._check_capacity_locked()

    def _check_capacity_locked(self) -> None:
        self._expire_locked()
        if len(self._sessions) >= self._max:
            raise LimitExceeded(f"too many open {self._kind} sessions; try again later")

    def _expire_locked(self) -> None:
        deadline = self._clock() - self._ttl
        for sid in [s for s, v in self._sessions.items() if v.opened_at < deadline]:
            del self._sessions[sid]
            log.info("%s session %s expired", self._kind, sid)

    def add(self, session: S) -> str:
        """Register a new session (capacity checked again) and return its id."""
        with self._lock:
            self._check_capacity_locked()
            session_id = secrets.token_urlsafe(18)
            self._sessions[session_id] = session
        return session_id

    def get(self, session_id: str) -> S:
        with self._lock:
            self._expire_locked()
            session = self._sessions.get(session_id)
        if session is None:
            raise NotFound(f"unknown or expired {self._kind} session")
        return session

    def claim(self, session_id: str, stage: Enum) -> S:
        """The session, reserved for one call that needs it at ``stage``."""
        session = self.get(session_id)
        with session.lock:
            if session.busy or session.stage is not stage:
                raise ProtocolError("this call is out of order for the session")
            session.busy = True
        return session

    def drop(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def close_partner(self, partner: str) -> int:
        """End every session of ``partner`` (resignation); returns how many."""
        with self._lock:
            ids = [sid for sid, s in self._sessions.items() if s.partner == partner]
            for sid in ids:
                del self._sessions[sid]
        return len(ids)

    def listing(self) -> list[tuple[str, str, float]]:
        """(session id, partner, age in seconds) of every open session."""
        now = self._clock()
        with self._lock:
            return [(sid, s.partner, now - s.opened_at) for sid, s in self._sessions.items()]
