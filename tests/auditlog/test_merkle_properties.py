"""The Merkle code against a naive, literal reading of RFC 9162 (hypothesis).

Prove then verify; mutate then reject; the compact range equals MTH at every size.
"""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from keynode.auditlog import merkle
from keynode.errors import VerificationError


def naive_mth(leaves: list[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + naive_mth(leaves[:k]) + naive_mth(leaves[k:])).digest()


def naive_path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*naive_path(m, leaves[:k]), naive_mth(leaves[k:])]
    return [*naive_path(m - k, leaves[k:]), naive_mth(leaves[:k])]


def naive_subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [naive_mth(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*naive_subproof(m, leaves[:k], complete), naive_mth(leaves[k:])]
    return [*naive_subproof(m - k, leaves[k:], False), naive_mth(leaves[:k])]


def reader(leaves: list[bytes]) -> merkle.NodeReader:
    tree = merkle.CompactRange()
    nodes = {}
    for data in leaves:
        for level, index, value in tree.append(merkle.leaf_hash(data)):
            nodes[(level, index)] = value
    return lambda level, index: nodes[(level, index)]


trees = st.lists(st.binary(max_size=8), min_size=1, max_size=70)


@given(trees)
def test_root_and_compact_range_match_naive_at_every_size(leaves: list[bytes]) -> None:
    tree = merkle.CompactRange()
    for size, data in enumerate(leaves, start=1):
        tree.append(merkle.leaf_hash(data))
        assert tree.root() == naive_mth(leaves[:size])
    assert merkle.root_hash(leaves) == naive_mth(leaves)
    rebuilt = merkle.CompactRange(
        len(leaves),
        [
            reader(leaves)(level, index)
            for level, index in merkle.CompactRange.coordinates(len(leaves))
        ],
    )
    assert rebuilt.root() == tree.root()


@given(trees, st.data())
def test_inclusion_prove_then_verify(leaves: list[bytes], data: st.DataObject) -> None:
    size = data.draw(st.integers(1, len(leaves)))
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(index, size, reader(leaves))
    assert proof == naive_path(index, leaves[:size])
    merkle.verify_inclusion(
        merkle.leaf_hash(leaves[index]), index, size, proof, naive_mth(leaves[:size])
    )


@given(trees, st.data())
def test_consistency_prove_then_verify(leaves: list[bytes], data: st.DataObject) -> None:
    size2 = data.draw(st.integers(1, len(leaves)))
    size1 = data.draw(st.integers(0, size2))
    proof = merkle.consistency_proof(size1, size2, reader(leaves))
    expected = [] if size1 in (0, size2) else naive_subproof(size1, leaves[:size2], True)
    assert proof == expected
    merkle.verify_consistency(
        size1, size2, proof, naive_mth(leaves[:size1]), naive_mth(leaves[:size2])
    )


distinct_trees = st.lists(st.binary(max_size=8), min_size=2, max_size=70, unique=True)


def flip_bit(value: bytes, bit: int) -> bytes:
    """``value`` with bit ``bit`` (counted over the whole string) inverted."""
    bit %= 8 * len(value)
    return value[: bit // 8] + bytes([value[bit // 8] ^ (1 << (bit % 8))]) + value[bit // 8 + 1 :]


@settings(max_examples=80)
@given(distinct_trees, st.data())
def test_inclusion_mutate_then_reject(leaves: list[bytes], data: st.DataObject) -> None:
    size = len(leaves)
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(index, size, reader(leaves))
    root = naive_mth(leaves)
    leaf = merkle.leaf_hash(leaves[index])
    mutation = data.draw(st.sampled_from(["flip", "drop", "extra", "leaf", "index", "root"]))
    if mutation == "flip":
        i = data.draw(st.integers(0, len(proof) - 1))
        proof[i] = flip_bit(proof[i], data.draw(st.integers(0, 255)))
    elif mutation == "drop":
        proof.pop(data.draw(st.integers(0, len(proof) - 1)))
    elif mutation == "extra":
        proof.insert(
            data.draw(st.integers(0, len(proof))), data.draw(st.binary(min_size=32, max_size=32))
        )
    elif mutation == "leaf":
        other = data.draw(st.integers(0, size - 1).filter(lambda x: x != index))
        leaf = merkle.leaf_hash(leaves[other])
    elif mutation == "index":
        index = data.draw(st.integers(0, size - 1).filter(lambda x: x != index))
    else:
        root = flip_bit(root, data.draw(st.integers(0, 255)))
    try:
        merkle.verify_inclusion(leaf, index, size, proof, root)
    except VerificationError:
        return
    raise AssertionError(f"a proof mutated by {mutation!r} verified")


@settings(max_examples=60)
@given(trees, st.data())
def test_consistency_mutate_then_reject(leaves: list[bytes], data: st.DataObject) -> None:
    size2 = len(leaves)
    if size2 < 2:
        return
    size1 = data.draw(st.integers(1, size2 - 1))
    proof = merkle.consistency_proof(size1, size2, reader(leaves))
    root1, root2 = naive_mth(leaves[:size1]), naive_mth(leaves)
    i = data.draw(st.integers(0, len(proof) - 1))
    bit = data.draw(st.integers(0, 255))
    proof[i] = flip_bit(proof[i], bit)
    try:
        merkle.verify_consistency(size1, size2, proof, root1, root2)
    except VerificationError:
        return
    raise AssertionError("a consistency proof with a flipped bit verified")
