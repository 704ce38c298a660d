"""RFC 6962/9162 published vectors drive keynode.auditlog.merkle, with named mutations.

The negative cases reproduce those of Go's transparency-dev/merkle verify tests: each
tampered proof must raise VerificationError (never return, never raise ValueError).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keynode.auditlog import merkle
from keynode.errors import VerificationError

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "rfc6962_merkle.json").read_text())
LEAVES = [bytes.fromhex(x) for x in VECTORS["leaves"]]
ROOTS = [bytes.fromhex(x) for x in VECTORS["roots"]]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def _nodes(leaves: list[bytes]) -> merkle.NodeReader:
    tree = merkle.CompactRange()
    nodes = {}
    for data in leaves:
        for level, index, value in tree.append(merkle.leaf_hash(data)):
            nodes[(level, index)] = value
    return lambda level, index: nodes[(level, index)]


NODE = _nodes(LEAVES)


def test_empty_tree_root() -> None:
    assert merkle.root_hash([]) == bytes.fromhex(VECTORS["empty_root"]) == merkle.EMPTY_ROOT


@pytest.mark.parametrize("size", range(1, 9))
def test_root_of_published_tree(size: int) -> None:
    assert merkle.root_hash(LEAVES[:size]) == ROOTS[size - 1]


INCLUSION = [
    (v["index"], v["size"], [bytes.fromhex(p) for p in v["proof"]]) for v in VECTORS["inclusion"]
]
CONSISTENCY = [
    (v["size1"], v["size2"], [bytes.fromhex(p) for p in v["proof"]]) for v in VECTORS["consistency"]
]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION, ids=lambda v: str(v)[:8])
def test_inclusion_vector_generated_and_verified(index: int, size: int, proof: list[bytes]) -> None:
    assert merkle.inclusion_proof(index, size, NODE) == proof
    merkle.verify_inclusion(merkle.leaf_hash(LEAVES[index]), index, size, proof, ROOTS[size - 1])


def _inclusion_mutations(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> dict[str, tuple]:
    cases: dict[str, tuple] = {
        "index-1": (leaf, index - 1, size, proof, root),
        "index+1": (leaf, index + 1, size, proof, root),
        "index^2": (leaf, index ^ 2, size, proof, root),
        "size*2": (leaf, index, size * 2, proof, root),
        "size/2": (leaf, index, size // 2, proof, root),
        "wrong leaf": (merkle.leaf_hash(b"WrongLeaf"), index, size, proof, root),
        "empty root": (leaf, index, size, proof, merkle.EMPTY_ROOT),
        "random root": (leaf, index, size, proof, SOME_HASH),
        "trailing garbage": (leaf, index, size, [*proof, b""], root),
        "trailing root": (leaf, index, size, [*proof, root], root),
        "preceding garbage": (leaf, index, size, [b"", *proof], root),
        "preceding root": (leaf, index, size, [root, *proof], root),
    }
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        cases[f"modified proof[{i}] bit 3"] = (leaf, index, size, flipped, root)
    if proof:
        cases["removed component"] = (leaf, index, size, proof[:-1], root)
    if len(proof) > 1:
        cases["inserted component"] = (leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], root)
    return cases


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_mutations_rejected(index: int, size: int, proof: list[bytes]) -> None:
    leaf = merkle.leaf_hash(LEAVES[index])
    cases = _inclusion_mutations(index, size, proof, ROOTS[size - 1], leaf)
    accepted = []
    for name, args in cases.items():
        try:
            merkle.verify_inclusion(*args)
        except VerificationError:
            continue
        accepted.append(name)
    assert accepted == []


@pytest.mark.parametrize(
    ("index", "size"),
    [(0, 0), (1, 0), (1, 1), (2, 1), (-1, 4)],
    ids=["0/0", "1/0", "1/1", "2/1", "-1/4"],
)
def test_inclusion_out_of_range_rejected(index: int, size: int) -> None:
    for root in (merkle.EMPTY_ROOT, SOME_HASH):
        with pytest.raises(VerificationError):
            merkle.verify_inclusion(SOME_HASH, index, size, [], root)


def test_inclusion_single_entry_and_bad_hash_lengths() -> None:
    leaf = merkle.leaf_hash(b"data")
    merkle.verify_inclusion(leaf, 0, 1, [], leaf)
    for bad_leaf, bad_root in [(leaf, b""), (b"", leaf), (b"", b"")]:
        with pytest.raises(VerificationError):
            merkle.verify_inclusion(bad_leaf, 0, 1, [], bad_root)


def test_last_leaf_of_every_size() -> None:
    for size in range(1, 9):
        proof = merkle.inclusion_proof(size - 1, size, NODE)
        merkle.verify_inclusion(
            merkle.leaf_hash(LEAVES[size - 1]), size - 1, size, proof, ROOTS[size - 1]
        )


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY, ids=lambda v: str(v)[:8])
def test_consistency_vector_generated_and_verified(
    size1: int, size2: int, proof: list[bytes]
) -> None:
    assert merkle.consistency_proof(size1, size2, NODE) == proof
    merkle.verify_consistency(size1, size2, proof, ROOTS[size1 - 1], ROOTS[size2 - 1])


@pytest.mark.parametrize(("size1", "size2", "proof"), [c for c in CONSISTENCY if c[2]])
def test_consistency_mutations_rejected(size1: int, size2: int, proof: list[bytes]) -> None:
    root1, root2 = ROOTS[size1 - 1], ROOTS[size2 - 1]
    cases: dict[str, tuple] = {
        "size1-1": (size1 - 1, size2, proof, root1, root2),
        "size1+1": (size1 + 1, size2, proof, root1, root2),
        "size1^2": (size1 ^ 2, size2, proof, root1, root2),
        "size2*2": (size1, size2 * 2, proof, root1, root2),
        "size2/2": (size1, size2 // 2, proof, root1, root2),
        "wrong root1": (size1, size2, proof, SOME_HASH, root2),
        "wrong root2": (size1, size2, proof, root1, SOME_HASH),
        "swapped roots": (size1, size2, proof, root2, root1),
        "empty proof": (size1, size2, [], root1, root2),
        "trailing garbage": (size1, size2, [*proof, b""], root1, root2),
        "trailing root1": (size1, size2, [*proof, root1], root1, root2),
        "trailing root2": (size1, size2, [*proof, root2], root1, root2),
        "preceding garbage": (size1, size2, [b"", *proof], root1, root2),
        "preceding root1": (size1, size2, [root1, *proof], root1, root2),
        "preceding root2": (size1, size2, [root2, *proof], root1, root2),
        "preceding proof[0]": (size1, size2, [proof[0], *proof], root1, root2),
        "truncated proof": (size1, size2, proof[:-1], root1, root2),
    }
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        cases[f"modified proof[{i}] bit 4"] = (size1, size2, flipped, root1, root2)
    accepted = []
    for name, args in cases.items():
        try:
            merkle.verify_consistency(*args)
        except VerificationError:
            continue
        accepted.append(name)
    assert accepted == []


def test_consistency_edge_cases() -> None:
    root1, root2 = ROOTS[0], ROOTS[1]
    # Always consistent: equal sizes with equal roots, and the empty tree with anything.
    merkle.verify_consistency(0, 0, [], root1, root1)
    merkle.verify_consistency(0, 1, [], root1, root2)
    merkle.verify_consistency(1, 1, [], root2, root2)
    assert merkle.consistency_proof(0, 5, NODE) == []
    assert merkle.consistency_proof(5, 5, NODE) == []
    rejected = [
        (0, 0, [], root1, root2),  # equal sizes, different roots
        (1, 1, [], root1, root2),
        (1, 0, [], root1, root2),  # the log shrank
        (2, 1, [], root1, root2),
        (1, 2, [], root1, root2),  # empty proof
        (0, 0, [merkle.EMPTY_ROOT], root1, root1),  # equal roots, non-empty proof
        (0, 1, [merkle.EMPTY_ROOT], root1, root1),
        (1, 1, [merkle.EMPTY_ROOT], root1, root1),
    ]
    for args in rejected:
        with pytest.raises(VerificationError):
            merkle.verify_consistency(*args)


def test_proof_generation_rejects_impossible_requests() -> None:
    from keynode.errors import InputError

    for call in (
        lambda: merkle.inclusion_proof(8, 8, NODE),
        lambda: merkle.inclusion_proof(-1, 8, NODE),
        lambda: merkle.consistency_proof(5, 4, NODE),
    ):
        with pytest.raises(InputError):
            call()
