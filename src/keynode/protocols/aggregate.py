"""Intersection-sum and per-segment aggregates over the ECDH-PSI overlap, transport-free.

After Google's private-join-and-compute. The *value holder* has records (each one or more
canonical identifiers) with integer value columns and a Paillier key; the *aggregator*
has identifiers, each optionally with the segment of its customer. With secret
ristretto255 scalars ``a`` (aggregator) and ``b`` (holder):

1. :meth:`Aggregator.request`: the aggregator sends ``a·H(u)`` for its identifiers,
   shuffled, each with its segment label ElGamal-encrypted under a key only the
   aggregator holds (per-segment runs only);
2. :meth:`ValueHolder.respond` / :meth:`Aggregator.accept_header`: the holder returns
   those elements as ``b·a·H(u)`` with the labels re-randomised, all shuffled again, with
   its public key, column widths and record count;
3. :meth:`ValueHolder.record_chunks` / :meth:`Aggregator.add_records`: the holder sends
   its records, shuffled, in bounded chunks: ``b·H(w)`` per identifier (padded to a fixed
   width with random elements) and a Paillier encryption of the packed value columns
   plus a count column. The aggregator computes ``a·b·H(w)``, matches, and folds each
   matched ciphertext into its segment's running sum (memory does not grow with the
   holder's record count);
   :meth:`Aggregator.finish`: drops every segment with fewer than ``k`` shared records,
   charges the ``epsilon`` budget and adds discrete Laplace noise under encryption (if
   the policy asks), re-randomises, and returns one ciphertext per released segment;
4. :meth:`ValueHolder.result`: the holder decrypts and unpacks.

:func:`run_in_process` runs both sides in one process, in message order.

A record matching identifiers of several segments counts once, in the lowest segment.

What each side learns (parties follow the protocol but are curious; see
``docs/paillier.md``):

* **aggregator**: the holder's record count, padded width and Paillier public key; the
  overlap size and the number of shared records per segment (it applies ``k``);
  nothing about values (Paillier, DCR), nor which holder record nor which of its own
  identifiers is shared (DDH; the holder shuffles and re-randomises the labels);
* **value holder**: the aggregator's number of identifiers; per released segment the sum
  of each of its columns over the shared records in that segment and their count —
  noisy if the policy adds noise — and which catalogue segments were suppressed; not
  the segment (or sharedness) of any record. *Caveat:* the holder chooses its values, so
  without noise it can learn the segment of a customer it singles out (value 1 for that
  record, 0 elsewhere); ``k`` does not prevent this, noise under a per-partner budget
  does. Policies that release per-segment sums to a value holder should require noise.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

from keynode.crypto import ristretto255 as r255
from keynode.crypto.batch import GroupPool
from keynode.crypto.budget import EpsilonBudget
from keynode.crypto.noise import laplace_noise
from keynode.crypto.paillier import (
    MIN_KEY_BITS,
    OwnerEncryptor,
    PaillierPrivateKey,
    PaillierPublicKey,
    add_plain,
    rerandomize,
)
from keynode.crypto.paillier_packing import PackingLayout
from keynode.crypto.paillier_pool import EncryptionPool
from keynode.crypto.secure_random import SecureRandom
from keynode.errors import InputError, LimitExceeded, ProtocolError
from keynode.protocols.labels import LABEL_BYTES, LabelKey, rerandomize_labels

#: Domain separation for identifiers hashed in this protocol (RFC 9380 suite named).
AGGREGATE_DST = b"keynode-aggregate-v1:ristretto255_XMD:SHA-512_R255MAP_RO_"
#: Extra noise bits beyond ``log2(scale)``: noise that large has probability < 2^-700.
NOISE_MARGIN_BITS = 10

_E = r255.ELEMENT_BYTES


def make_layout(
    column_bits: Sequence[int], max_summands: int, epsilon: Fraction | None
) -> PackingLayout:
    """The packing both sides derive from the agreed columns, record count and policy.

    Value columns first, then a 1-bit count column (so any overflow is detectable);
    with noise, room for noise of scale ``Delta_1 / epsilon`` (see :func:`sensitivities`).
    """
    bits = (*column_bits, 1)
    noise_bits = 0
    if epsilon is not None:
        scale = Fraction(sum(sensitivities(bits))) / epsilon
        noise_bits = math.ceil(scale).bit_length() + NOISE_MARGIN_BITS  # >= log2(scale)
    return PackingLayout(bits, max_summands=max(1, max_summands), noise_bits=noise_bits)


def sensitivities(column_bits: Sequence[int]) -> list[int]:
    """What one customer can change in each column's sum: ``2^B - 1``."""
    return [(1 << b) - 1 for b in column_bits]


# -- messages -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AggregatorRequest:
    """Step 1: ``a·H(u)`` packed, and for per-segment runs the labels and label key."""

    elements: bytes
    labels: bytes | None = None
    label_key: bytes | None = None


@dataclass(frozen=True)
class HolderHeader:
    """Step 2: the holder's key, column widths and record count, and the aggregator's
    elements re-blinded (labels re-randomised), shuffled."""

    public_key: bytes
    column_bits: tuple[int, ...]
    width: int
    record_count: int
    reblinded: bytes
    reblinded_labels: bytes | None


@dataclass(frozen=True)
class RecordChunk:
    """Step 3: whole records: ``width`` blinded elements and one ciphertext each."""

    elements: bytes
    ciphertexts: bytes


@dataclass(frozen=True)
class AggregateResponse:
    """Step 3 (end): one ciphertext per released segment, and the suppressed segments."""

    released: tuple[tuple[int, bytes], ...]
    suppressed: tuple[int, ...]


@dataclass(frozen=True)
class SegmentAggregate:
    """The holder's result for one segment; ``None`` sums and count when suppressed."""

    segment: int
    sums: tuple[int, ...] | None
    count: int | None

    @property
    def suppressed(self) -> bool:
        return self.count is None


@dataclass(frozen=True)
class AggregatePolicy:
    """The aggregator's limits: threshold ``k``, optional noise, key and size caps."""

    k: int
    epsilon: Fraction | None = None
    min_key_bits: int = MIN_KEY_BITS
    max_records: int = 10_000_000
    max_width: int = 8

    def __post_init__(self) -> None:
        if self.k < 1 or (self.epsilon is not None and self.epsilon <= 0):
            raise InputError("k must be at least 1 and epsilon positive")


# -- the aggregator ---------------------------------------------------------------------


class _Accepted:
    """The aggregator's state once the header is in: segment map, running sums, counts."""

    def __init__(
        self,
        header: HolderHeader,
        public_key: PaillierPublicKey,
        layout: PackingLayout,
        segment_of: dict[bytes, int],
        catalogue: Sequence[int],
    ) -> None:
        self.header = header
        self.public_key = public_key
        self.layout = layout
        self.segment_of = segment_of
        self.sums = dict.fromkeys(catalogue, 1)  # 1 is an encryption of 0
        self.counts = dict.fromkeys(catalogue, 0)
        self.received = 0


class Aggregator:
    """The side that knows the overlap (and segments) and sums the holder's ciphertexts.

    ``segments[i]`` is the segment of ``keys[i]``; without segments every identifier is
    in segment 0 (a plain intersection-sum). ``catalogue`` lists the agreed segments (by
    default those present); every one is reported, released or suppressed.
    """

    def __init__(
        self,
        keys: Sequence[bytes],
        pool: GroupPool,
        policy: AggregatePolicy,
        *,
        segments: Sequence[int] | None = None,
        catalogue: Sequence[int] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if segments is not None and len(segments) != len(keys):
            raise InputError("one segment per identifier is needed")
        self._keys = list(keys)
        self._segments = list(segments) if segments is not None else None
        present = sorted(set(self._segments)) if self._segments is not None else [0]
        self.catalogue = tuple(sorted(set(catalogue))) if catalogue is not None else tuple(present)
        if not set(present) <= set(self.catalogue):
            raise InputError("a segment is missing from the catalogue")
        self.policy = policy
        self._pool = pool
        self._rng = rng or SecureRandom()
        self._scalar = r255.random_scalar()
        self._labels = LabelKey(self.catalogue) if self._segments is not None else None
        self._sent: int | None = None
        self._state: _Accepted | None = None

    def request(self) -> AggregatorRequest:
        """Step 1: blinded identifiers (with encrypted segment labels), shuffled."""
        order = list(range(len(self._keys)))
        self._rng.shuffle(order)
        blinded = self._pool.blind([self._keys[i] for i in order], AGGREGATE_DST, self._scalar)
        self._sent = len(order)
        if self._labels is None or self._segments is None:
            return AggregatorRequest(blinded)
        labels = self._labels.encrypt_all([self._segments[i] for i in order], self._pool)
        return AggregatorRequest(blinded, labels, self._labels.public)

    def accept_header(self, header: HolderHeader) -> None:
        """Step 2: check the holder's key, layout and sizes; learn the segment map."""
        if self._sent is None or self._state is not None:
            raise ProtocolError("unexpected header")
        policy = self.policy
        pk = PaillierPublicKey.from_bytes(header.public_key, min_bits=policy.min_key_bits)
        if not 1 <= header.width <= policy.max_width or header.record_count < 0:
            raise ProtocolError("invalid record shape")
        if header.record_count > policy.max_records:
            raise LimitExceeded(f"{header.record_count} records exceed {policy.max_records}")
        try:
            layout = make_layout(header.column_bits, header.record_count, policy.epsilon)
            layout.check_capacity(pk)
        except InputError:
            raise ProtocolError("invalid column layout") from None
        self._state = _Accepted(header, pk, layout, self._segment_map(header), self.catalogue)

    def _segment_map(self, header: HolderHeader) -> dict[bytes, int]:
        doubled, sent = header.reblinded, self._sent or 0
        if len(doubled) != sent * _E:
            raise ProtocolError("the holder returned the wrong number of elements")
        elements = [doubled[i : i + _E] for i in range(0, len(doubled), _E)]
        if self._labels is None:
            return dict.fromkeys(elements, 0)
        labels = header.reblinded_labels
        if labels is None or len(labels) != sent * LABEL_BYTES:
            raise ProtocolError("the holder returned the wrong number of labels")
        return dict(zip(elements, self._labels.decrypt_all(labels, self._pool), strict=True))

    def add_records(self, chunk: RecordChunk) -> None:
        """Step 3: match one chunk and fold its matched ciphertexts into the running sums."""
        state = self._state
        if state is None:
            raise ProtocolError("records before the header")
        step, size = state.header.width * _E, state.public_key.ciphertext_bytes
        count = len(chunk.elements) // step
        if len(chunk.elements) % step or len(chunk.ciphertexts) != count * size:
            raise ProtocolError("a chunk must hold whole records with one ciphertext each")
        if state.received + count > state.header.record_count:
            raise ProtocolError("more records than declared")
        state.received += count
        ours = self._pool.mult(self._scalar, chunk.elements)
        segment_of, pk = state.segment_of, state.public_key
        for j in range(count):
            found = [
                segment_of[e]
                for p in range(j * step, (j + 1) * step, _E)
                if (e := ours[p : p + _E]) in segment_of
            ]
            if found:
                segment = min(found)
                c = pk.ciphertext_from_bytes(chunk.ciphertexts[j * size : (j + 1) * size])
                state.sums[segment] = state.sums[segment] * c % pk.nsquare
                state.counts[segment] += 1

    def shared_counts(self) -> dict[int, int]:
        """Shared records per segment so far: what the aggregator learns by design (it
        applies ``k``) and what a release is logged with."""
        if self._state is None:
            raise ProtocolError("no records yet")
        return dict(self._state.counts)

    def finish(
        self, budget: EpsilonBudget | None = None
    ) -> tuple[AggregateResponse, EpsilonBudget | None]:
        """Threshold, charge the budget, add noise, re-randomise, release.

        Returns the response and the partner's budget after this query (unchanged
        without noise); nothing is released when the budget refuses.
        """
        state, policy = self._state, self.policy
        if state is None or state.received != state.header.record_count:
            raise ProtocolError("the record upload is incomplete")
        if policy.epsilon is not None:
            if budget is None:
                raise InputError("a noisy query needs the partner's budget")
            budget = budget.charge(policy.epsilon)
        pk, layout = state.public_key, state.layout
        released, suppressed = [], []
        for segment in self.catalogue:
            if state.counts[segment] < policy.k:
                suppressed.append(segment)
                continue
            layout.check_summands(state.counts[segment])
            total = state.sums[segment]
            if policy.epsilon is not None:
                noise = laplace_noise(policy.epsilon, sensitivities(layout.column_bits), self._rng)
                total = add_plain(pk, total, layout.noise_plaintext(noise))
            fresh = rerandomize(pk, total, rng=self._rng)
            released.append((segment, pk.ciphertext_to_bytes(fresh)))
        return AggregateResponse(tuple(released), tuple(suppressed)), budget


# -- the value holder ---------------------------------------------------------------------


class ValueHolder:
    """The side with the values and the Paillier key; learns only released aggregates.

    ``values[i]`` are the column values (each in ``[0, 2^column_bits[c])``) of
    ``records[i]``; ``epsilon`` must be the policy's, so both sides derive one layout.
    """

    def __init__(
        self,
        records: Sequence[Sequence[bytes]],
        values: Sequence[Sequence[int]],
        column_bits: Sequence[int],
        private_key: PaillierPrivateKey,
        pool: GroupPool,
        *,
        epsilon: Fraction | None = None,
        encryption: EncryptionPool | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if len(records) != len(values) or any(len(r) == 0 for r in records):
            raise InputError("one non-empty record per row of values is needed")
        self._records = records
        self._column_bits = tuple(column_bits)
        self._layout = make_layout(column_bits, len(records), epsilon)
        self._layout.check_capacity(private_key.public_key)
        self._packed = [self._layout.pack([*v, 1]) for v in values]
        self._key = private_key
        self._pool = pool
        self._encryption = encryption or EncryptionPool(OwnerEncryptor(private_key), workers=1)
        if self._encryption.public_key != private_key.public_key:
            raise InputError("the encryption pool is for another key")
        self._rng = rng or SecureRandom()
        self._scalar = r255.random_scalar()
        self.width = max((len(r) for r in records), default=1)

    def respond(self, request: AggregatorRequest) -> HolderHeader:
        """Step 2: re-blind, re-randomise and shuffle the aggregator's elements."""
        if len(request.elements) % _E:
            raise ProtocolError("element data is not a whole number of 32-byte elements")
        n = len(request.elements) // _E
        reblinded = self._pool.mult(self._scalar, request.elements)
        order = list(range(n))
        self._rng.shuffle(order)
        labels = None
        if request.labels is not None or request.label_key is not None:
            if request.labels is None or request.label_key is None:
                raise ProtocolError("labels need a label key")
            if len(request.labels) != n * LABEL_BYTES:
                raise ProtocolError("one label per element is needed")
            fresh = self._pool.run(
                rerandomize_labels, request.labels, request.label_key, step=LABEL_BYTES
            )
            labels = b"".join(fresh[i * LABEL_BYTES : (i + 1) * LABEL_BYTES] for i in order)
        return HolderHeader(
            public_key=self._key.public_key.to_bytes(),
            column_bits=self._column_bits,
            width=self.width,
            record_count=len(self._records),
            reblinded=b"".join(reblinded[i * _E : (i + 1) * _E] for i in order),
            reblinded_labels=labels,
        )

    def record_chunks(self, max_records: int) -> Iterator[RecordChunk]:
        """Step 3: our records, shuffled, blinded, padded and encrypted, chunk by chunk."""
        rows = list(range(len(self._records)))
        self._rng.shuffle(rows)
        pk, per_chunk = self._key.public_key, max(1, max_records)
        for start in range(0, len(rows), per_chunk):
            part = rows[start : start + per_chunk]
            blinded = self._pool.blind(
                [key for i in part for key in self._records[i]], AGGREGATE_DST, self._scalar
            )
            ciphertexts = self._encryption.encrypt([self._packed[i] for i in part])
            yield RecordChunk(
                elements=self._pad([self._records[i] for i in part], blinded),
                ciphertexts=b"".join(pk.ciphertext_to_bytes(c) for c in ciphertexts),
            )

    def _pad(self, records: Sequence[Sequence[bytes]], blinded: bytes) -> bytes:
        """Pad every record to :attr:`width` elements with random ones (they match nothing)."""
        out, pos = bytearray(), 0
        for record in records:
            take = len(record) * _E
            out += blinded[pos : pos + take]
            pos += take
            for _ in range(self.width - len(record)):
                out += r255.random_element()
        return bytes(out)

    def result(self, response: AggregateResponse) -> tuple[SegmentAggregate, ...]:
        """Step 4: decrypt and unpack every released segment; list the suppressed ones."""
        pk = self._key.public_key
        out = [SegmentAggregate(s, None, None) for s in response.suppressed]
        for segment, data in response.released:
            *sums, count = self._layout.unpack(self._key.decrypt(pk.ciphertext_from_bytes(data)))
            out.append(SegmentAggregate(segment, tuple(sums), count))
        return tuple(sorted(out, key=lambda a: a.segment))


def run_in_process(
    aggregator: Aggregator,
    holder: ValueHolder,
    *,
    budget: EpsilonBudget | None = None,
    max_records: int = 4096,
) -> tuple[tuple[SegmentAggregate, ...], EpsilonBudget | None]:
    """Both sides in one process, in the order a transport would carry the messages."""
    aggregator.accept_header(holder.respond(aggregator.request()))
    for chunk in holder.record_chunks(max_records):
        aggregator.add_records(chunk)
    response, budget = aggregator.finish(budget)
    return holder.result(response), budget
