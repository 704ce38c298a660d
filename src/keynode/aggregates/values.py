"""The key node's values summed over a partner's overlap: sessions with no transport.

The second direction of the aggregates: the roles of
:mod:`keynode.protocols.aggregate` are swapped. The key node is the value holder: per
session it makes a fresh Paillier key and encrypts one value column of its own
customers (one record per customer, with all of the customer's identifiers); the
partner is the aggregator with its identifiers and no segments (a plain
intersection-sum). The partner sums the key node's ciphertexts over the records it
shares, applies ``k`` and returns one re-randomised ciphertext; the key node decrypts
it. Driven in order: :meth:`ValuesEngine.open_session`,
:meth:`~ValuesEngine.upload_request`, :meth:`~ValuesEngine.header_chunks`,
:meth:`~ValuesEngine.record_chunks` and :meth:`~ValuesEngine.finish`; the caller logs
the release before the plaintext leaves. Any error ends the session.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum

from keynode.aggregates.sessions import SessionTable
from keynode.crypto.batch import GroupPool
from keynode.crypto.paillier import DEFAULT_KEY_BITS, generate_keypair
from keynode.crypto.ristretto255 import ELEMENT_BYTES
from keynode.errors import InputError, LimitExceeded, ProfileMismatch, ProtocolError
from keynode.protocols.aggregate import (
    AggregateResponse,
    AggregatorRequest,
    RecordChunk,
    ValueHolder,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyNodeValues:
    """The key node's customers (each its identifiers) with one integer value each.

    Values lie in ``[0, 2^bits)``; records without a value take no part.
    """

    records: tuple[tuple[bytes, ...], ...]
    values: tuple[int, ...]
    bits: int = 32

    def __post_init__(self) -> None:
        if len(self.records) != len(self.values) or not self.records:
            raise InputError("key-node values need records, each with one value")
        if any(not r for r in self.records):
            raise InputError("every valued record needs at least one identifier")
        if not 1 <= self.bits <= 64 or any(not 0 <= v < 1 << self.bits for v in self.values):
            raise InputError(f"key-node values must be integers in [0, 2^{self.bits})")

    @classmethod
    def from_records(
        cls, records: Sequence[Sequence[bytes]], values: Sequence[object], bits: int = 32
    ) -> KeyNodeValues:
        """Pair records with a value column read from the key node's file.

        A row without identifiers or with an empty value is left out; any other value
        must be an integer in range, else :class:`InputError` names the row.
        """
        kept: list[tuple[bytes, ...]] = []
        numbers: list[int] = []
        for row, (record, value) in enumerate(zip(records, values, strict=True)):
            if not record or value is None or not str(value).strip():
                continue
            number = _integer(value)
            if number is None or not 0 <= number < 1 << bits:
                raise InputError(f"row {row}: value {value!r} is not an integer in [0, 2^{bits})")
            kept.append(tuple(record))
            numbers.append(number)
        return cls(tuple(kept), tuple(numbers), bits)


def _integer(cell: object) -> int | None:
    """A table cell as an integer: ints, integral floats (CSV columns read as floats) and
    integer strings; anything else is ``None``."""
    if isinstance(cell, bool):
        return None
    if isinstance(cell, int):
        return cell
    if isinstance(cell, float):
        return int(cell) if cell.is_integer() else None
    try:
        return int(str(cell).strip())
    except ValueError:
        return None


@dataclass(frozen=True)
class OpenedValues:
    session_id: str
    public_key: bytes
    column_bits: tuple[int, ...]
    record_count: int
    record_width: int
    max_chunk_elements: int
    k: int


@dataclass(frozen=True)
class ValuesRelease:
    """The decrypted result of a session and the counts its release is logged with."""

    sums: tuple[int, ...]
    count: int
    input_count: int


class _Stage(Enum):
    OPEN = 1
    REQUESTED = 2
    HEADER_SENT = 3
    RECORDS_SENT = 4


@dataclass
class _Session:
    partner: str
    element_count: int
    k: int
    holder: ValueHolder
    ciphertext_bytes: int
    opened_at: float
    header: bytes = b""
    stage: _Stage = _Stage.OPEN
    busy: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class ValuesEngine:
    """Runs the key node's (value holder's) side of key-node-values sessions.

    ``max_sessions``, ``max_elements`` and ``session_ttl_s`` bound the work partners can
    cause; chunks carry at most ``max_chunk_elements`` elements or ``max_chunk_bytes``
    bytes of records, under the 4 MiB gRPC cap.
    """

    def __init__(
        self,
        table: KeyNodeValues,
        profile_id: str,
        pool: GroupPool,
        *,
        max_sessions: int,
        max_elements: int,
        max_chunk_elements: int,
        max_chunk_bytes: int,
        session_ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.table = table
        self.profile_id = profile_id
        self._pool = pool
        self._max_elements = max_elements
        self._max_chunk_elements = max_chunk_elements
        self._max_chunk_bytes = max_chunk_bytes
        self._clock = clock
        self._sessions: SessionTable[_Session] = SessionTable(
            "key-node-values", max_sessions=max_sessions, ttl_s=session_ttl_s, clock=clock
        )

    def open_session(
        self, partner: str, profile_id: str, element_count: int, *, k: int
    ) -> OpenedValues:
        """Check the request, make this session's key and encrypt-ready holder."""
        if profile_id != self.profile_id:
            raise ProfileMismatch(
                f"normalisation profile mismatch: the key node uses {self.profile_id!r}, "
                f"the request names {profile_id!r}; both sides must use the same profile"
            )
        if not 1 <= element_count <= self._max_elements:
            raise LimitExceeded(f"a session takes 1 to {self._max_elements} identifiers")
        self._sessions.check_capacity()  # before making a key and a holder
        _, private_key = generate_keypair(DEFAULT_KEY_BITS)
        table = self.table
        holder = ValueHolder(
            table.records, [[v] for v in table.values], (table.bits,), private_key, self._pool
        )
        session_id = self._sessions.add(
            _Session(
                partner,
                element_count,
                k,
                holder,
                private_key.public_key.ciphertext_bytes,
                self._clock(),
            )
        )
        log.info("key-node values session %s opened for %s", session_id, partner)
        return OpenedValues(
            session_id,
            private_key.public_key.to_bytes(),
            (table.bits,),
            len(table.records),
            holder.width,
            self._max_chunk_elements,
            k,
        )

    def session_partner(self, session_id: str) -> str:
        """The partner a session belongs to."""
        return self._sessions.get(session_id).partner

    def close_partner_sessions(self, partner: str) -> int:
        """End every session of ``partner`` (resignation); returns how many."""
        return self._sessions.close_partner(partner)

    def open_sessions(self) -> list[tuple[str, str, float]]:
        """(session id, partner, age in seconds) of every open session."""
        return self._sessions.listing()

    def upload_request(self, session_id: str, chunks: Iterable[tuple[int, bytes]]) -> int:
        """Step 1: the partner's blinded identifiers in ``(sequence, elements)`` chunks;
        re-blinds and shuffles them (the header the partner downloads next)."""
        session = self._sessions.claim(session_id, _Stage.OPEN)
        step, received = self._max_chunk_elements, bytearray()
        try:
            for i, (sequence, part) in enumerate(chunks):
                if sequence != i:
                    raise ProtocolError(f"chunk {sequence} arrived where {i} was expected")
                if len(part) % ELEMENT_BYTES or len(part) > step * ELEMENT_BYTES:
                    raise ProtocolError(f"a chunk holds whole elements, at most {step}")
                received += part
                if len(received) > session.element_count * ELEMENT_BYTES:
                    raise ProtocolError("more elements than the session declared")
            if len(received) != session.element_count * ELEMENT_BYTES:
                raise ProtocolError("fewer elements than the session declared")
            session.header = session.holder.respond(AggregatorRequest(bytes(received))).reblinded
        except BaseException:
            self._sessions.drop(session_id)
            raise
        session.stage, session.busy = _Stage.REQUESTED, False
        return session.element_count

    def header_chunks(self, session_id: str) -> Iterator[bytes]:
        """Step 2: the re-blinded elements, in slices of at most the chunk size."""
        session = self._sessions.claim(session_id, _Stage.REQUESTED)
        session.stage, session.busy = _Stage.HEADER_SENT, False
        size = self._max_chunk_elements * ELEMENT_BYTES
        header = session.header
        for start in range(0, len(header), size):
            yield header[start : start + size]

    def record_chunks(self, session_id: str) -> Iterator[RecordChunk]:
        """Step 3: the key node's records, shuffled, blinded, padded and encrypted."""
        session = self._sessions.claim(session_id, _Stage.HEADER_SENT)
        session.stage, session.busy = _Stage.RECORDS_SENT, False
        record_bytes = session.holder.width * ELEMENT_BYTES + session.ciphertext_bytes
        yield from session.holder.record_chunks(max(1, self._max_chunk_bytes // record_bytes))

    def finish(self, session_id: str, ciphertext: bytes | None) -> ValuesRelease:
        """Step 4: decrypt the partner's aggregate; the session ends here either way.

        ``None`` (the partner suppressed the result under ``k``) gives a count of 0,
        which the broker's cohort rule refuses. A ciphertext that is malformed or under
        another key (another session's) is refused as an invalid result.
        """
        session = self._sessions.claim(session_id, _Stage.RECORDS_SENT)
        if ciphertext is None:
            response = AggregateResponse((), (0,))
        else:
            response = AggregateResponse(((0, ciphertext),), ())
        try:
            (result,) = session.holder.result(response)
        finally:
            self._sessions.drop(session_id)
        return ValuesRelease(result.sums or (), result.count or 0, session.element_count)
