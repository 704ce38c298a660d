"""RFC 9162 §2.1 Merkle tree hashing, proofs and their verification (low level).

This module is the raw math of the policy log, kept free of storage and I/O so that
anyone can check it against the published RFC 6962/9162 vectors:

- :func:`leaf_hash` / :func:`node_hash`: SHA-256 with the 0x00 / 0x01 domain prefixes;
- :func:`root_hash`: MTH over raw entry bytes;
- :func:`inclusion_proof` / :func:`consistency_proof`: PATH and PROOF (§2.1.3.1,
  §2.1.4.1), computed from a callback that returns perfect-subtree hashes, so that a
  store can answer in O(log n) lookups at any tree size;
- :func:`verify_inclusion` / :func:`verify_consistency`: §2.1.3.2 and §2.1.4.2, which
  raise :class:`~keynode.errors.VerificationError` and never return a boolean;
- :class:`CompactRange`: the right edge of a growing tree, which yields the root at
  every size while entries stream past, and the perfect subtrees a store persists.

Callers that want a log should use :class:`keynode.auditlog.PolicyLog` instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

from keynode.errors import InputError, VerificationError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) — the root of the empty tree."""

NodeReader = Callable[[int, int], bytes]
"""``node(level, index)``: hash of the perfect subtree over leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 is the leaf hashes."""


def leaf_hash(data: bytes) -> bytes:
    """MTH of a single entry: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class CompactRange:
    """The perfect subtrees on the right edge of a tree of ``size`` leaves.

    One hash per set bit of ``size``, largest subtree first. Appending a leaf merges
    equal-sized neighbours; :meth:`root` folds them into the tree head.
    """

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0 or len(hashes) != size.bit_count():
            raise InputError("compact range does not match its size")
        self.size = size
        self._hashes = list(hashes)

    @staticmethod
    def coordinates(size: int) -> list[tuple[int, int]]:
        """``(level, index)`` of the right-edge perfect subtrees of a tree of ``size``."""
        out = []
        offset = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                out.append((level, offset >> level))
                offset += 1 << level
        return out

    def copy(self) -> CompactRange:
        """An independent copy (to extend speculatively)."""
        return CompactRange(self.size, self._hashes)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; return every perfect subtree ``(level, index, hash)`` it completes."""
        index = self.size
        level = 0
        current = leaf
        completed = [(0, index, leaf)]
        while index & 1:
            current = node_hash(self._hashes.pop(), current)
            index >>= 1
            level += 1
            completed.append((level, index, current))
        self._hashes.append(current)
        self.size += 1
        return completed

    def root(self) -> bytes:
        """MTH of the first ``size`` leaves."""
        if not self._hashes:
            return EMPTY_ROOT
        current = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            current = node_hash(left, current)
        return current


def root_hash(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of raw entries, as RFC 9162 §2.1.1 defines it."""
    tree = CompactRange()
    for data in leaves:
        tree.append(leaf_hash(data))
    return tree.root()


def subtree_hash(start: int, end: int, node: NodeReader) -> bytes:
    """MTH(D[start:end]) for a range that RFC 9162's recursion produces."""
    n = end - start
    if n & (n - 1) == 0:
        level = n.bit_length() - 1
        return node(level, start >> level)
    k = _split(n)
    return node_hash(subtree_hash(start, start + k, node), subtree_hash(start + k, end, node))


def inclusion_proof(index: int, size: int, node: NodeReader) -> list[bytes]:
    """PATH(index, D[size]): the audit path of leaf ``index`` in the tree of ``size``."""
    if not 0 <= index < size:
        raise InputError(f"leaf {index} is not in a tree of {size} entries")
    proof: list[bytes] = []

    def path(start: int, end: int) -> None:
        if end - start == 1:
            return
        mid = start + _split(end - start)
        if index < mid:
            path(start, mid)
            proof.append(subtree_hash(mid, end, node))
        else:
            path(mid, end)
            proof.append(subtree_hash(start, mid, node))

    path(0, size)
    return proof


def consistency_proof(size1: int, size2: int, node: NodeReader) -> list[bytes]:
    """PROOF(size1, D[size2]): proves the tree of ``size1`` is a prefix of ``size2``'s."""
    if not 0 <= size1 <= size2:
        raise InputError(f"no consistency proof from size {size1} to size {size2}")
    proof: list[bytes] = []
    if size1 in (0, size2):
        return proof

    def subproof(m: int, start: int, end: int, complete: bool) -> None:
        if m == end - start:
            if not complete:
                proof.append(subtree_hash(start, end, node))
            return
        k = _split(end - start)
        if m <= k:
            subproof(m, start, start + k, complete)
            proof.append(subtree_hash(start + k, end, node))
        else:
            subproof(m - k, start + k, end, False)
            proof.append(subtree_hash(start, start + k, node))

    subproof(size1, 0, size2, True)
    return proof


def _check_hashes(hashes: Iterable[bytes]) -> None:
    for h in hashes:
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise VerificationError("invalid proof")


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check an inclusion proof (RFC 9162 §2.1.3.2); raise VerificationError if it fails."""
    _check_hashes([leaf_hash, root, *proof])
    if not 0 <= index < size:
        raise VerificationError("invalid inclusion proof")
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise VerificationError("invalid inclusion proof")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0 or r != root:
        raise VerificationError("invalid inclusion proof")


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check a consistency proof (RFC 9162 §2.1.4.2); raise VerificationError if it fails.

    Edge cases as the RFC and Go's transparency-dev/merkle treat them: equal sizes need an
    empty proof and equal roots; size1 = 0 needs an empty proof (the empty tree is a
    prefix of every tree); a shrinking log never verifies.
    """
    _check_hashes([root1, root2, *proof])
    if not 0 <= size1 <= size2:
        raise VerificationError("invalid consistency proof")
    if size1 == size2:
        if proof or root1 != root2:
            raise VerificationError("invalid consistency proof")
        return
    if size1 == 0:
        if proof:
            raise VerificationError("invalid consistency proof")
        return
    if not proof:
        raise VerificationError("invalid consistency proof")
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError("invalid consistency proof")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != root1 or sr != root2:
        raise VerificationError("invalid consistency proof")
