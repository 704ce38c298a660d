"""ECDH-PSI over ristretto255: the partner's and the key node's halves, transport-free.

The partner holds records (each a tuple of canonical identifier bytes), the key node a
set of canonical identifiers. With secret scalars ``a`` (partner) and ``b`` (key node):

1. the partner sends ``a·H(x)`` for every key of every record, records padded to a fixed
   width with random elements so that all records look alike;
2. the key node returns ``b·a·H(x)`` — in order (membership) or with the records shuffled
   (cardinality) — and sends ``b·H(y)`` for its own identifiers, shuffled;
3. the partner computes ``a·b·H(y)`` and compares. A record is shared when any of its
   keys matches, so it counts once however many keys match.

What each side learns (parties follow the protocol but are curious):

* partner, cardinality: the overlap size in records, the key node's number of
  identifiers, and how many of a (shuffled, unlinkable) record's keys matched;
* partner, membership: which of its own records are shared (and by how many keys),
  and the key node's number of identifiers;
* key node, either variant: the partner's record count and padded width; nothing about
  which identifiers the partner holds (DDH in ristretto255).

Messages are packed 32-byte encodings; see :mod:`keynode.crypto.batch`.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from keynode.crypto.batch import GroupPool, Pending
from keynode.crypto.ristretto255 import ELEMENT_BYTES, random_element, random_scalar
from keynode.crypto.secure_random import SecureRandom
from keynode.errors import InputError, LimitExceeded, ProtocolError

#: Domain-separation tag: names keynode, the protocol, its version and the RFC 9380 suite.
PSI_DST = b"keynode-ecdh-psi-v1:ristretto255_XMD:SHA-512_R255MAP_RO_"


class Variant(enum.Enum):
    """What the partner learns: the overlap size, or which of its records are shared."""

    CARDINALITY = "cardinality"
    MEMBERSHIP = "membership"


@dataclass(frozen=True)
class PsiResult:
    """The partner's output. ``shared_records`` (indices into its records) is membership only."""

    variant: Variant
    partner_records: int
    key_node_elements: int
    overlap: int
    shared_records: tuple[int, ...] | None = None


def _chunks(packed: bytes, max_elements: int, width: int = 1) -> Iterator[bytes]:
    """Split packed elements into chunks of whole records of at most ``max_elements``."""
    per_chunk = max(width, max_elements - max_elements % width) * ELEMENT_BYTES
    for start in range(0, len(packed), per_chunk):
        yield packed[start : start + per_chunk]


class PartnerSession:
    """The partner's half of one ECDH-PSI run."""

    def __init__(
        self,
        records: Sequence[Sequence[bytes]],
        variant: Variant,
        pool: GroupPool,
        *,
        width: int | None = None,
        scalar: bytes | None = None,
    ) -> None:
        self.variant = variant
        self.width = width if width is not None else max((len(r) for r in records), default=1)
        if self.width < 1 or any(len(r) > self.width for r in records):
            raise InputError("record width must be at least the largest number of keys per record")
        if any(len(r) == 0 for r in records):
            raise InputError("every record needs at least one key")
        self._records = records
        self._pool = pool
        self._scalar = scalar if scalar is not None else random_scalar()
        self._key_node: set[bytes] = set()
        self._key_node_count = 0
        self._reblinded: list[bytes] = []

    @property
    def record_count(self) -> int:
        return len(self._records)

    def blinded_chunks(self, max_elements: int) -> Iterator[bytes]:
        """``a·H(x)`` for every key, records padded to ``width``, in chunks of whole records."""
        per_chunk = max(1, max_elements // self.width)
        for start in range(0, len(self._records), per_chunk):
            group = self._records[start : start + per_chunk]
            flat = [key for record in group for key in record]
            blinded = self._pool.blind(flat, PSI_DST, self._scalar)
            yield self._pad(group, blinded)

    def _pad(self, group: Sequence[Sequence[bytes]], blinded: bytes) -> bytes:
        if all(len(r) == self.width for r in group):
            return blinded
        out = bytearray()
        pos = 0
        for record in group:
            take = len(record) * ELEMENT_BYTES
            out += blinded[pos : pos + take]
            pos += take
            for _ in range(self.width - len(record)):
                out += random_element()
        return bytes(out)

    def add_key_node_elements(self, packed: bytes) -> None:
        """Take a chunk of the key node's ``b·H(y)``; store ``a·b·H(y)``."""
        reblinded = self._pool.mult(self._scalar, packed)
        self._key_node_count += len(packed) // ELEMENT_BYTES
        self._key_node.update(
            reblinded[i : i + ELEMENT_BYTES] for i in range(0, len(reblinded), ELEMENT_BYTES)
        )

    def add_reblinded(self, packed: bytes) -> None:
        """Take a chunk of the partner's own elements re-blinded by the key node."""
        if len(packed) % ELEMENT_BYTES:
            raise ProtocolError("element data is not a whole number of 32-byte elements")
        self._reblinded.append(packed)

    def result(self) -> PsiResult:
        """Compare and return what this variant reveals."""
        doubled = b"".join(self._reblinded)
        expected = len(self._records) * self.width * ELEMENT_BYTES
        if len(doubled) != expected:
            raise ProtocolError("the key node returned the wrong number of elements")
        step = self.width * ELEMENT_BYTES
        shared = [
            i
            for i, start in enumerate(range(0, len(doubled), step))
            if any(
                doubled[p : p + ELEMENT_BYTES] in self._key_node
                for p in range(start, start + step, ELEMENT_BYTES)
            )
        ]
        return PsiResult(
            variant=self.variant,
            partner_records=len(self._records),
            key_node_elements=self._key_node_count,
            overlap=len(shared),
            shared_records=tuple(shared) if self.variant is Variant.MEMBERSHIP else None,
        )


class KeyNodeSession:
    """The key node's half of one ECDH-PSI run, fed chunk by chunk.

    Chunks are re-blinded on the worker pool as they arrive, so receiving and computing
    overlap. Sizes are declared up front and enforced: a stream that sends more than it
    declared, skips or repeats a chunk, or ends early is refused.
    """

    def __init__(
        self,
        scalar: bytes,
        variant: Variant,
        record_count: int,
        record_width: int,
        pool: GroupPool,
        *,
        max_chunk_elements: int,
        rng: random.Random | None = None,
    ) -> None:
        if record_width < 1:
            raise ProtocolError("record width must be at least 1")
        self.variant = variant
        self.record_count = record_count
        self.record_width = record_width
        self.max_chunk_elements = max_chunk_elements
        self._scalar = scalar
        self._pool = pool
        self._rng = rng if rng is not None else SecureRandom()
        self._next_sequence = 0
        self._received = 0
        self._pending: list[Pending] = []
        self._reblinded: bytes | None = None

    @property
    def expected_elements(self) -> int:
        return self.record_count * self.record_width

    @property
    def upload_complete(self) -> bool:
        return self._reblinded is not None

    def accept_chunk(self, sequence: int, packed: bytes) -> None:
        """Check and start re-blinding one uploaded chunk."""
        if self._reblinded is not None:
            raise ProtocolError("the upload is already complete")
        if sequence != self._next_sequence:
            raise ProtocolError(f"chunk {sequence} out of order: expected {self._next_sequence}")
        if len(packed) % ELEMENT_BYTES or not packed:
            raise ProtocolError("a chunk must hold one or more whole 32-byte elements")
        count = len(packed) // ELEMENT_BYTES
        if count > self.max_chunk_elements:
            raise LimitExceeded(f"chunk of {count} elements exceeds {self.max_chunk_elements}")
        if self._received + count > self.expected_elements:
            raise LimitExceeded(
                f"more elements than the {self.expected_elements} declared for this session"
            )
        self._next_sequence += 1
        self._received += count
        self._pending.append(self._pool.mult_async(self._scalar, packed))

    def finish_upload(self) -> int:
        """Wait for the re-blinding; refuse an incomplete upload or any invalid element."""
        if self._received != self.expected_elements:
            self.abandon()
            raise ProtocolError(
                f"upload incomplete: {self._received} of {self.expected_elements} elements"
            )
        try:
            parts = [f.result() for f in self._pending]
        finally:
            self._pending = []
        self._reblinded = self._arrange(b"".join(parts))
        return self._received

    def abandon(self) -> None:
        """Drop pending work (a failed or cancelled stream)."""
        for f in self._pending:
            f.cancel()
        self._pending = []

    def _arrange(self, doubled: bytes) -> bytes:
        if self.variant is Variant.MEMBERSHIP:
            return doubled
        step = self.record_width * ELEMENT_BYTES
        records = [doubled[i : i + step] for i in range(0, len(doubled), step)]
        self._rng.shuffle(records)
        return b"".join(records)

    def reblinded_chunks(self, max_elements: int) -> Iterator[bytes]:
        """The partner's elements re-blinded, in whole records."""
        if self._reblinded is None:
            raise ProtocolError("the upload is not complete")
        return _chunks(self._reblinded, max_elements, self.record_width)


def blind_key_node_set(
    hashed: bytes, scalar: bytes, pool: GroupPool, rng: random.Random | None = None
) -> bytes:
    """``b·H(y)`` for the key node's hashed identifiers, shuffled (cacheable per scalar)."""
    blinded = pool.mult(scalar, hashed)
    elements = [blinded[i : i + ELEMENT_BYTES] for i in range(0, len(blinded), ELEMENT_BYTES)]
    (rng if rng is not None else SecureRandom()).shuffle(elements)
    return b"".join(elements)


def key_node_chunks(blinded: bytes, max_elements: int) -> Iterator[bytes]:
    """The key node's blinded set in chunks."""
    return _chunks(blinded, max_elements)


def run_in_process(
    partner_records: Sequence[Sequence[bytes]],
    key_node_keys: Sequence[bytes],
    variant: Variant,
    pool: GroupPool,
    *,
    max_chunk_elements: int = 65536,
) -> PsiResult:
    """Both halves in one process, as the service runs them but without a transport."""
    partner = PartnerSession(partner_records, variant, pool)
    key_scalar = random_scalar()
    key_node = KeyNodeSession(
        key_scalar,
        variant,
        partner.record_count,
        partner.width,
        pool,
        max_chunk_elements=max_chunk_elements,
    )
    for seq, chunk in enumerate(partner.blinded_chunks(max_chunk_elements)):
        key_node.accept_chunk(seq, chunk)
    key_node.finish_upload()
    hashed = pool.hash(sorted(set(key_node_keys)), PSI_DST)
    for chunk in key_node_chunks(blind_key_node_set(hashed, key_scalar, pool), max_chunk_elements):
        partner.add_key_node_elements(chunk)
    for chunk in key_node.reblinded_chunks(max_chunk_elements):
        partner.add_reblinded(chunk)
    return partner.result()
