"""The key node's aggregates engine: sessions, caps, TTL and budgets, with no transport.

One engine serves one key-node dataset: its identifiers, each with the name of its
customer's segment. Segment names become the protocol's integer ids through a sorted
catalogue (segment ``i`` is ``catalogue[i]``), so both sides can name them without the
key node revealing anything beyond the agreed list. Each session is one run of
:class:`keynode.protocols.aggregate.Aggregator` for one partner, driven in order:
:meth:`AggregateEngine.open_session`, :meth:`~AggregateEngine.request_chunks`,
:meth:`~AggregateEngine.upload_header`, :meth:`~AggregateEngine.upload_records` (one or
more times) and :meth:`~AggregateEngine.finish`. Any error in a stream ends the session.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction

from keynode.aggregates.sessions import SessionTable
from keynode.aggregates.values import KeyNodeValues, ValuesEngine
from keynode.crypto.batch import GroupPool
from keynode.crypto.budget import EpsilonBudget
from keynode.crypto.paillier import MIN_KEY_BITS, PaillierPublicKey
from keynode.crypto.ristretto255 import ELEMENT_BYTES
from keynode.errors import InputError, LimitExceeded, ProfileMismatch, ProtocolError
from keynode.protocols.aggregate import (
    AggregatePolicy,
    Aggregator,
    HolderHeader,
    RecordChunk,
    make_layout,
)

log = logging.getLogger(__name__)

#: Bytes of one encrypted segment label (ElGamal over ristretto255: two elements).
LABEL_BYTES = 2 * ELEMENT_BYTES


@dataclass(frozen=True)
class SegmentedIdentifiers:
    """The key node's identifiers, each with the segment of the customer it belongs to."""

    keys: tuple[bytes, ...]
    segments: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.keys) != len(self.segments) or not self.keys:
            raise InputError("aggregates need identifiers, each with one segment")
        if len(set(self.keys)) != len(self.keys):
            raise InputError("an identifier may appear once only")

    @classmethod
    def from_records(
        cls, records: Sequence[Sequence[bytes]], segments: Sequence[object]
    ) -> SegmentedIdentifiers:
        """One segment per record, given to each of its identifiers.

        Records without a segment (empty or missing) take no part in aggregates. An
        identifier in records of several segments keeps the first in sorted order, the
        same rule the protocol applies to a record matching several segments.
        """
        best: dict[bytes, str] = {}
        for record, segment in zip(records, segments, strict=True):
            if segment is None or not str(segment):
                continue
            for key in record:
                if key not in best or str(segment) < best[key]:
                    best[key] = str(segment)
        return cls(tuple(best), tuple(best.values()))

    @property
    def catalogue(self) -> tuple[str, ...]:
        """The segment names, sorted: the protocol's segment ``i`` is ``catalogue[i]``."""
        return tuple(sorted(set(self.segments)))


@dataclass(frozen=True)
class AggregateLimits:
    """Server-side caps. Chunk sizes keep every message under the 4 MiB gRPC cap."""

    #: Most records one partner may send in a session.
    max_records: int = 2_000_000
    #: Most identifiers per record.
    max_width: int = 8
    #: Most value columns, and the widest column.
    max_columns: int = 16
    max_column_bits: int = 64
    #: Most sessions open at once (each holds a map of the key node's identifiers).
    max_sessions: int = 4
    #: Elements with their labels per chunk: 32 768 x 96 bytes = 3 MiB.
    max_chunk_elements: int = 32_768
    #: Bytes of record data per chunk (elements and ciphertexts).
    max_chunk_bytes: int = 3 * 1024 * 1024
    #: A session not finished within this many seconds is dropped.
    session_ttl_s: float = 3600.0
    #: Smallest Paillier modulus accepted from a partner.
    min_key_bits: int = MIN_KEY_BITS
    #: Each partner's total epsilon for noisy queries (kept in memory, see the docs).
    epsilon_budget: Fraction = Fraction(1)


@dataclass(frozen=True)
class SessionShape:
    """What a partner declares when it opens a session."""

    record_count: int
    record_width: int
    column_bits: tuple[int, ...]
    public_key: bytes
    epsilon: Fraction | None = None


@dataclass(frozen=True)
class OpenedAggregate:
    session_id: str
    segments: tuple[str, ...]
    key_node_elements: int
    max_chunk_elements: int
    max_chunk_records: int
    k: int


@dataclass(frozen=True)
class Release:
    """A finished session: what may leave, and the counts its release is logged with.

    ``smallest_released`` is the number of shared records in the smallest released
    segment (0 when every segment is suppressed): the cohort the release is judged by.
    """

    released: tuple[tuple[str, bytes], ...]
    suppressed: tuple[str, ...]
    input_count: int
    smallest_released: int


class _Stage(Enum):
    OPEN = 1
    REQUESTED = 2
    ACCEPTED = 3


@dataclass
class _Session:
    partner: str
    shape: SessionShape
    aggregator: Aggregator
    opened_at: float
    max_chunk_records: int
    stage: _Stage = _Stage.OPEN
    busy: bool = False
    next_sequence: int = 0
    received: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class AggregateEngine:
    """Runs the key node's (aggregator's) side of segment-aggregate sessions."""

    def __init__(
        self,
        identifiers: SegmentedIdentifiers,
        profile_id: str,
        pool: GroupPool,
        *,
        limits: AggregateLimits | None = None,
        values: KeyNodeValues | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.profile_id = profile_id
        self.limits = limits or AggregateLimits()
        # With a value column, partners may also have the key node's values summed over
        # their overlap (the second direction, keynode.aggregates.values).
        self.values = (
            ValuesEngine(
                values,
                profile_id,
                pool,
                max_sessions=self.limits.max_sessions,
                max_elements=self.limits.max_records,
                max_chunk_elements=self.limits.max_chunk_elements,
                max_chunk_bytes=self.limits.max_chunk_bytes,
                session_ttl_s=self.limits.session_ttl_s,
                clock=clock,
            )
            if values is not None
            else None
        )
        self.catalogue = identifiers.catalogue
        index = {name: i for i, name in enumerate(self.catalogue)}
        self._keys = identifiers.keys
        self._segment_ids = [index[s] for s in identifiers.segments]
        # With one segment there is nothing to hide about membership: a plain
        # intersection-sum without labels (their ElGamal work is most of the key node's).
        self._labelled = len(self.catalogue) > 1
        self._pool = pool
        self._clock = clock
        self._sessions: SessionTable[_Session] = SessionTable(
            "aggregate",
            max_sessions=self.limits.max_sessions,
            ttl_s=self.limits.session_ttl_s,
            clock=clock,
        )
        self._budget_lock = threading.Lock()
        self._budgets: dict[str, EpsilonBudget] = {}

    @property
    def key_node_elements(self) -> int:
        return len(self._keys)

    # -- sessions ---------------------------------------------------------------------

    def open_session(
        self, partner: str, profile_id: str, shape: SessionShape, *, k: int
    ) -> OpenedAggregate:
        """Check the partner's shape, key and budget against the limits; start a session."""
        if profile_id != self.profile_id:
            raise ProfileMismatch(
                f"normalisation profile mismatch: the key node uses {self.profile_id!r}, "
                f"the request names {profile_id!r}; both sides must use the same profile"
            )
        limits = self.limits
        self._check_shape(shape)
        public_key = PaillierPublicKey.from_bytes(shape.public_key, min_bits=limits.min_key_bits)
        try:
            make_layout(shape.column_bits, shape.record_count, shape.epsilon).check_capacity(
                public_key
            )
        except InputError:
            raise ProtocolError("the columns do not fit the key's plaintext") from None
        if shape.epsilon is not None and self.budget(partner).remaining < shape.epsilon:
            raise LimitExceeded("the privacy budget for this partner is spent")
        record_bytes = shape.record_width * ELEMENT_BYTES + public_key.ciphertext_bytes
        per_chunk = max(1, limits.max_chunk_bytes // record_bytes)
        self._sessions.check_capacity()  # before the per-session work below
        policy = AggregatePolicy(
            k=k,
            epsilon=shape.epsilon,
            min_key_bits=limits.min_key_bits,
            max_records=limits.max_records,
            max_width=limits.max_width,
        )
        aggregator = Aggregator(
            self._keys,
            self._pool,
            policy,
            segments=self._segment_ids if self._labelled else None,
            catalogue=range(len(self.catalogue)) if self._labelled else None,
        )
        session_id = self._sessions.add(
            _Session(partner, shape, aggregator, self._clock(), per_chunk)
        )
        log.info(
            "aggregate session %s opened for %s (%d records)",
            session_id,
            partner,
            shape.record_count,
        )
        return OpenedAggregate(
            session_id,
            self.catalogue,
            len(self._keys),
            limits.max_chunk_elements,
            per_chunk,
            k,
        )

    def _check_shape(self, shape: SessionShape) -> None:
        limits = self.limits
        if shape.record_count < 1 or not 1 <= shape.record_width <= limits.max_width:
            raise ProtocolError(
                f"a session needs at least one record of 1 to {limits.max_width} identifiers"
            )
        if shape.record_count > limits.max_records:
            raise LimitExceeded(
                f"{shape.record_count} records exceed this key node's cap of "
                f"{limits.max_records} per session"
            )
        bits = shape.column_bits
        if not 1 <= len(bits) <= limits.max_columns or not all(
            1 <= b <= limits.max_column_bits for b in bits
        ):
            raise ProtocolError(
                f"1 to {limits.max_columns} value columns of 1 to {limits.max_column_bits} "
                "bits are needed"
            )
        if shape.epsilon is not None and shape.epsilon <= 0:
            raise ProtocolError("epsilon must be positive")

    def budget(self, partner: str) -> EpsilonBudget:
        """The partner's epsilon budget as it stands."""
        with self._budget_lock:
            return self._budgets.get(partner) or EpsilonBudget(partner, self.limits.epsilon_budget)

    def session_partner(self, session_id: str) -> str:
        """The partner a session belongs to."""
        return self._sessions.get(session_id).partner

    def close(self, session_id: str) -> None:
        self._sessions.get(session_id)
        self._sessions.drop(session_id)

    def close_partner_sessions(self, partner: str) -> int:
        """End every session of ``partner`` (resignation), both directions; returns how many."""
        values = self.values.close_partner_sessions(partner) if self.values else 0
        return self._sessions.close_partner(partner) + values

    def open_sessions(self) -> list[tuple[str, str, float]]:
        """(session id, partner, age in seconds) of every open session, both directions."""
        return self._sessions.listing() + (self.values.open_sessions() if self.values else [])

    # -- the protocol's steps -----------------------------------------------------------

    def request_chunks(self, session_id: str) -> Iterator[tuple[bytes, bytes, bytes]]:
        """Step 1: ``(elements, labels, label key)`` slices of the blinded, labelled set.

        The blinding runs here, not at open, so that a slow key node set cannot hold up a
        short call. The label key comes with the first slice only; with a single segment
        there are no labels (empty bytes).
        """
        session = self._sessions.claim(session_id, _Stage.OPEN)
        try:
            request = session.aggregator.request()
        except BaseException:
            self._sessions.drop(session_id)
            raise
        session.stage, session.busy = _Stage.REQUESTED, False
        step = self.limits.max_chunk_elements
        key, all_labels = request.label_key or b"", request.labels or b""
        for start in range(0, len(self._keys), step):
            elements = request.elements[start * ELEMENT_BYTES : (start + step) * ELEMENT_BYTES]
            labels = all_labels[start * LABEL_BYTES : (start + step) * LABEL_BYTES]
            yield elements, labels, key
            key = b""

    def upload_header(self, session_id: str, chunks: Iterable[tuple[int, bytes, bytes]]) -> int:
        """Step 2: the re-blinded, re-labelled elements in ``(sequence, elements, labels)``."""
        session = self._sessions.claim(session_id, _Stage.REQUESTED)
        expected, step = len(self._keys), self.limits.max_chunk_elements
        elements, labels = bytearray(), bytearray()
        try:
            for i, (sequence, part, part_labels) in enumerate(chunks):
                count = len(part) // ELEMENT_BYTES
                if sequence != i:
                    raise ProtocolError(f"chunk {sequence} arrived where {i} was expected")
                if len(part) % ELEMENT_BYTES or count > step:
                    raise ProtocolError(f"a chunk holds whole elements, at most {step}")
                if len(part_labels) != (count * LABEL_BYTES if self._labelled else 0):
                    raise ProtocolError("one label per element is needed (none for one segment)")
                if len(elements) // ELEMENT_BYTES + count > expected:
                    raise ProtocolError("more elements than the key node sent")
                elements += part
                labels += part_labels
            shape = session.shape
            session.aggregator.accept_header(
                HolderHeader(
                    public_key=shape.public_key,
                    column_bits=shape.column_bits,
                    width=shape.record_width,
                    record_count=shape.record_count,
                    reblinded=bytes(elements),
                    reblinded_labels=bytes(labels) if self._labelled else None,
                )
            )
        except BaseException:
            self._sessions.drop(session_id)
            raise
        session.stage, session.busy = _Stage.ACCEPTED, False
        return len(elements) // ELEMENT_BYTES

    def upload_records(self, session_id: str, chunks: Iterable[tuple[int, bytes, bytes]]) -> int:
        """Step 3: ``(sequence, elements, ciphertexts)`` chunks; sequences continue across
        calls. Returns the records received so far in the session."""
        session = self._sessions.claim(session_id, _Stage.ACCEPTED)
        cap = session.max_chunk_records
        try:
            for sequence, elements, ciphertexts in chunks:
                if sequence != session.next_sequence:
                    raise ProtocolError(
                        f"chunk {sequence} arrived where {session.next_sequence} was expected"
                    )
                per_record = session.shape.record_width * ELEMENT_BYTES
                if len(elements) > cap * per_record:
                    raise ProtocolError(f"a chunk holds at most {cap} records")
                session.aggregator.add_records(RecordChunk(elements, ciphertexts))
                session.next_sequence += 1
                session.received += len(elements) // per_record
        except BaseException:
            self._sessions.drop(session_id)
            raise
        session.busy = False
        return session.received

    def finish(self, session_id: str) -> Release:
        """Step 3 (end): threshold, charge the budget, add noise, re-randomise.

        The session ends here whatever happens; the caller logs the release before
        anything leaves.
        """
        session = self._sessions.claim(session_id, _Stage.ACCEPTED)
        try:
            with self._budget_lock:
                budget = None
                if session.shape.epsilon is not None:
                    budget = self._budgets.get(session.partner) or EpsilonBudget(
                        session.partner, self.limits.epsilon_budget
                    )
                response, budget = session.aggregator.finish(budget)
                if budget is not None:
                    self._budgets[session.partner] = budget
        finally:
            self._sessions.drop(session_id)
        counts = session.aggregator.shared_counts()
        names = self.catalogue
        return Release(
            released=tuple((names[s], c) for s, c in response.released),
            suppressed=tuple(names[s] for s in response.suppressed),
            input_count=session.shape.record_count,
            smallest_released=min((counts[s] for s, _ in response.released), default=0),
        )
