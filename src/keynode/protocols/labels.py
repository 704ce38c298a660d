"""Segment labels: ElGamal over ristretto255, re-randomisable without the key.

The aggregator (the key node) sends each blinded identifier with its customer's segment
encrypted under a key only it holds; the value holder re-randomises every label before
returning it, so the aggregator can decrypt the segment of a matched element without
either side learning anything new, and the holder learns no segment at all. Segment ids
map to group elements by hashing under their own domain-separation tag.

Labels are 64 bytes (two 32-byte elements). The batch functions are module-level so that
:meth:`keynode.crypto.batch.GroupPool.run` can spread them over the worker processes.
"""

from __future__ import annotations

from collections.abc import Sequence

import rbcl

from keynode.crypto import ristretto255 as r255
from keynode.crypto.batch import GroupPool
from keynode.errors import ProtocolError

#: Domain separation for the group elements that stand for segment ids.
LABEL_DST = b"keynode-aggregate-v1:segment-label:ristretto255_XMD:SHA-512_R255MAP_RO_"
_E = r255.ELEMENT_BYTES
LABEL_BYTES = 2 * _E


def _segment_element(segment: int) -> bytes:
    return r255.hash_to_group(segment.to_bytes(8, "big", signed=True), LABEL_DST)


def _add(p: bytes, q: bytes) -> bytes:
    return bytes(rbcl.crypto_core_ristretto255_add(p, q))


def rerandomize_labels(labels: bytes, public: bytes) -> bytes:
    """``(c1 + r·B, c2 + r·X)`` per label: same segment, unlinkable to the input."""
    r255.check_element(public)
    out = []
    for i in range(0, len(labels), LABEL_BYTES):
        c1, c2 = labels[i : i + _E], labels[i + _E : i + LABEL_BYTES]
        r255.check_element(c1)
        r255.check_element(c2)
        r = r255.random_scalar()
        rb = bytes(rbcl.crypto_scalarmult_ristretto255_base(r))
        out.append(_add(c1, rb) + _add(c2, r255.scalarmult(r, public)))
    return b"".join(out)


def _encrypt_labels(segments: Sequence[int], public: bytes, elements: dict[int, bytes]) -> bytes:
    """ElGamal encryptions of the segment elements, one 64-byte label per segment id."""
    out = []
    for segment in segments:
        r = r255.random_scalar()
        c1 = bytes(rbcl.crypto_scalarmult_ristretto255_base(r))
        out.append(c1 + _add(elements[segment], r255.scalarmult(r, public)))
    return b"".join(out)


def _decrypt_labels(labels: bytes, secret: bytes) -> bytes:
    """The segment elements inside the labels, packed (the caller maps them to segments)."""
    out = []
    for i in range(0, len(labels), LABEL_BYTES):
        r255.check_element(labels[i + _E : i + LABEL_BYTES])
        shared = r255.scalarmult(secret, labels[i : i + _E])
        out.append(
            bytes(rbcl.crypto_core_ristretto255_sub(labels[i + _E : i + LABEL_BYTES], shared))
        )
    return b"".join(out)


class LabelKey:
    """The aggregator's ElGamal key for segment labels; never leaves the aggregator."""

    def __init__(self, catalogue: Sequence[int]) -> None:
        self._secret = r255.random_scalar()
        self.public = bytes(rbcl.crypto_scalarmult_ristretto255_base(self._secret))
        self._elements = {s: _segment_element(s) for s in catalogue}
        self._segments = {e: s for s, e in self._elements.items()}

    def encrypt_all(self, segments: Sequence[int], pool: GroupPool) -> bytes:
        """One label per segment id, computed on the worker pool."""
        return pool.run(_encrypt_labels, segments, self.public, self._elements)

    def decrypt_all(self, labels: bytes, pool: GroupPool) -> list[int]:
        """The segment of each label; a label of no catalogue segment is a protocol error."""
        found = pool.run(_decrypt_labels, labels, self._secret, step=LABEL_BYTES)
        try:
            return [self._segments[found[i : i + _E]] for i in range(0, len(found), _E)]
        except KeyError:
            raise ProtocolError("invalid segment label") from None
