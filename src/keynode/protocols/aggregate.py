"""Intersection-sum and per-segment aggregates over the ECDH-PSI overlap, transport-free.

After Google's private-join-and-compute. The *value holder* has records (each one or more
canonical identifiers) with integer value columns and a Paillier key; the *aggregator*
has identifiers, each optionally with the segment of its customer. With secret
ristretto255 scalars ``a`` (aggregator) and ``b`` (holder):

1. :meth:`Aggregator.request`: the aggregator sends ``a·H(u)`` for its identifiers,
   shuffled, each with its segment label ElGamal-encrypted under a key only the
   aggregator holds (per-segment runs only);
2. :meth:`ValueHolder.respond`: the holder returns those elements as ``b·a·H(u)`` with the
   labels re-randomised, all shuffled again; and sends its own records as ``b·H(w)``
   (padded to a fixed width with random elements), each with a Paillier encryption of
   its packed value columns plus a count column, shuffled;
3. :meth:`Aggregator.aggregate`: the aggregator computes ``a·b·H(w)``, matches, decrypts
   the labels of matched elements, sums the ciphertexts per segment, drops every segment
   with fewer than ``k`` shared records, charges the ``epsilon`` budget and adds discrete
   Laplace noise under encryption (if the policy asks), re-randomises, and returns one
   ciphertext per released segment;
4. :meth:`ValueHolder.result`: the holder decrypts and unpacks.

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
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import rbcl

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
    sum_ciphertexts,
)
from keynode.crypto.paillier_packing import PackingLayout
from keynode.crypto.paillier_pool import EncryptionPool
from keynode.errors import InputError, LimitExceeded, ProtocolError

#: Domain separation for identifiers hashed in this protocol (RFC 9380 suite named).
AGGREGATE_DST = b"keynode-aggregate-v1:ristretto255_XMD:SHA-512_R255MAP_RO_"
#: Domain separation for the group elements that stand for segment ids.
LABEL_DST = b"keynode-aggregate-v1:segment-label:ristretto255_XMD:SHA-512_R255MAP_RO_"
#: Extra noise bits beyond ``log2(scale)``: noise that large has probability < 2^-700.
NOISE_MARGIN_BITS = 10

_E = r255.ELEMENT_BYTES
_LABEL = 2 * _E


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


# -- segment labels: ElGamal over ristretto255, re-randomisable without the key -------


def _segment_element(segment: int) -> bytes:
    return r255.hash_to_group(segment.to_bytes(8, "big", signed=True), LABEL_DST)


def _add(p: bytes, q: bytes) -> bytes:
    return bytes(rbcl.crypto_core_ristretto255_add(p, q))


def _rerandomize_labels(public: bytes, labels: bytes) -> list[bytes]:
    """``(c1 + r·B, c2 + r·X)`` per label: same segment, unlinkable to the input."""
    r255.check_element(public)
    out = []
    for i in range(0, len(labels), _LABEL):
        c1, c2 = labels[i : i + _E], labels[i + _E : i + _LABEL]
        r255.check_element(c1)
        r255.check_element(c2)
        r = r255.random_scalar()
        rb = bytes(rbcl.crypto_scalarmult_ristretto255_base(r))
        out.append(_add(c1, rb) + _add(c2, r255.scalarmult(r, public)))
    return out


class _LabelKey:
    """The aggregator's ElGamal key for segment labels; never leaves the aggregator."""

    def __init__(self, catalogue: Sequence[int]) -> None:
        self._secret = r255.random_scalar()
        self.public = bytes(rbcl.crypto_scalarmult_ristretto255_base(self._secret))
        self._elements = {s: _segment_element(s) for s in catalogue}
        self._segments = {e: s for s, e in self._elements.items()}

    def encrypt(self, segment: int) -> bytes:
        r = r255.random_scalar()
        c1 = bytes(rbcl.crypto_scalarmult_ristretto255_base(r))
        return c1 + _add(self._elements[segment], r255.scalarmult(r, self.public))

    def decrypt(self, label: bytes) -> int:
        r255.check_element(label[_E:])
        shared = r255.scalarmult(self._secret, label[:_E])
        element = bytes(rbcl.crypto_core_ristretto255_sub(label[_E:], shared))
        if element not in self._segments:
            raise ProtocolError("invalid segment label")
        return self._segments[element]


# -- messages -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AggregatorRequest:
    """Step 1: ``a·H(u)`` packed, and for per-segment runs the labels and label key."""

    elements: bytes
    labels: bytes | None = None
    label_key: bytes | None = None


@dataclass(frozen=True)
class HolderUpload:
    """Step 2: the holder's key, columns, records and the aggregator's elements re-blinded."""

    public_key: bytes
    column_bits: tuple[int, ...]
    width: int
    elements: bytes
    ciphertexts: bytes
    reblinded: bytes
    reblinded_labels: bytes | None


@dataclass(frozen=True)
class AggregateResponse:
    """Step 3: one ciphertext per released segment, and the suppressed segments."""

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
        self._pool = pool
        self._rng = rng or random.SystemRandom()
        self._scalar = r255.random_scalar()
        self._labels = _LabelKey(self.catalogue) if self._segments is not None else None
        self._sent = 0

    def request(self) -> AggregatorRequest:
        """Step 1: blinded identifiers (with encrypted segment labels), shuffled."""
        order = list(range(len(self._keys)))
        self._rng.shuffle(order)
        blinded = self._pool.blind([self._keys[i] for i in order], AGGREGATE_DST, self._scalar)
        self._sent = len(order)
        if self._labels is None or self._segments is None:
            return AggregatorRequest(blinded)
        labels = b"".join(self._labels.encrypt(self._segments[i]) for i in order)
        return AggregatorRequest(blinded, labels, self._labels.public)

    def _segment_map(self, upload: HolderUpload) -> dict[bytes, int]:
        doubled = upload.reblinded
        if len(doubled) != self._sent * _E:
            raise ProtocolError("the holder returned the wrong number of elements")
        elements = [doubled[i : i + _E] for i in range(0, len(doubled), _E)]
        if self._labels is None:
            return dict.fromkeys(elements, 0)
        labels = upload.reblinded_labels
        if labels is None or len(labels) != self._sent * _LABEL:
            raise ProtocolError("the holder returned the wrong number of labels")
        return {
            e: self._labels.decrypt(labels[j * _LABEL : (j + 1) * _LABEL])
            for j, e in enumerate(elements)
        }

    def aggregate(
        self,
        upload: HolderUpload,
        policy: AggregatePolicy,
        budget: EpsilonBudget | None = None,
    ) -> tuple[AggregateResponse, EpsilonBudget | None]:
        """Step 3: per-segment sums over the overlap, thresholded, noised, re-randomised.

        Returns the response and the budget after this query (charged before anything is
        computed from the holder's data; unchanged without noise).
        """
        pk = PaillierPublicKey.from_bytes(upload.public_key, min_bits=policy.min_key_bits)
        records, layout = _check_upload(upload, pk, policy)
        if policy.epsilon is not None:
            if budget is None:
                raise InputError("a noisy query needs the partner's budget")
            budget = budget.charge(policy.epsilon)
        segment_of = self._segment_map(upload)
        ours = self._pool.mult(self._scalar, upload.elements)
        step = upload.width * _E
        members: dict[int, list[int]] = {s: [] for s in self.catalogue}
        for j in range(records):
            found = [
                segment_of[ours[p : p + _E]]
                for p in range(j * step, (j + 1) * step, _E)
                if ours[p : p + _E] in segment_of
            ]
            if found:
                members[min(found)].append(j)
        size = pk.ciphertext_bytes
        released, suppressed = [], []
        for segment, rows in members.items():
            if len(rows) < policy.k:
                suppressed.append(segment)
                continue
            layout.check_summands(len(rows))
            cts = (
                pk.ciphertext_from_bytes(upload.ciphertexts[j * size : (j + 1) * size])
                for j in rows
            )
            total = sum_ciphertexts(pk, cts)
            if policy.epsilon is not None:
                noise = laplace_noise(policy.epsilon, sensitivities(layout.column_bits), self._rng)
                total = add_plain(pk, total, layout.noise_plaintext(noise))
            released.append(
                (segment, pk.ciphertext_to_bytes(rerandomize(pk, total, rng=self._rng)))
            )
        return AggregateResponse(tuple(released), tuple(suppressed)), budget


def _check_upload(
    upload: HolderUpload, pk: PaillierPublicKey, policy: AggregatePolicy
) -> tuple[int, PackingLayout]:
    """Sizes and layout of a holder's upload; anything inconsistent is a ProtocolError."""
    if not 1 <= upload.width <= policy.max_width or len(upload.elements) % (upload.width * _E):
        raise ProtocolError("invalid record width")
    records = len(upload.elements) // (upload.width * _E)
    if records > policy.max_records:
        raise LimitExceeded(f"{records} records exceed the cap of {policy.max_records}")
    if len(upload.ciphertexts) != records * pk.ciphertext_bytes:
        raise ProtocolError("one ciphertext per record is needed")
    try:
        layout = make_layout(upload.column_bits, records, policy.epsilon)
        layout.check_capacity(pk)
    except InputError:
        raise ProtocolError("invalid column layout") from None
    return records, layout


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
        self._rng = rng or random.SystemRandom()
        self._scalar = r255.random_scalar()
        self.width = max((len(r) for r in records), default=1)

    def respond(self, request: AggregatorRequest) -> HolderUpload:
        """Step 2: re-blind and shuffle the aggregator's elements; blind and encrypt ours."""
        if len(request.elements) % _E:
            raise ProtocolError("element data is not a whole number of 32-byte elements")
        n = len(request.elements) // _E
        reblinded = self._pool.mult(self._scalar, request.elements)
        order = list(range(n))
        self._rng.shuffle(order)
        shuffled = b"".join(reblinded[i * _E : (i + 1) * _E] for i in order)
        labels = None
        if request.labels is not None or request.label_key is not None:
            if request.labels is None or request.label_key is None:
                raise ProtocolError("labels need a label key")
            if len(request.labels) != n * _LABEL:
                raise ProtocolError("one label per element is needed")
            fresh = _rerandomize_labels(request.label_key, request.labels)
            labels = b"".join(fresh[i] for i in order)
        rows = list(range(len(self._records)))
        self._rng.shuffle(rows)
        flat = [key for i in rows for key in self._records[i]]
        blinded = self._pool.blind(flat, AGGREGATE_DST, self._scalar)
        ciphertexts = self._encryption.encrypt([self._packed[i] for i in rows])
        pk = self._key.public_key
        return HolderUpload(
            public_key=pk.to_bytes(),
            column_bits=self._column_bits,
            width=self.width,
            elements=self._pad([self._records[i] for i in rows], blinded),
            ciphertexts=b"".join(pk.ciphertext_to_bytes(c) for c in ciphertexts),
            reblinded=shuffled,
            reblinded_labels=labels,
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
