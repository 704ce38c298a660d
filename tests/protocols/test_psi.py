"""ECDH-PSI state machines: results equal plaintext set operations; bad streams refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keynode.crypto.batch import GroupPool
from keynode.crypto.ristretto255 import IDENTITY, random_scalar
from keynode.errors import InputError, LimitExceeded, ProtocolError
from keynode.protocols.psi import (
    KeyNodeSession,
    PartnerSession,
    Variant,
    run_in_process,
)


@pytest.fixture(scope="module")
def pool() -> Iterator[GroupPool]:
    with GroupPool(1) as p:
        yield p


ids = st.binary(min_size=1, max_size=6)
records = st.lists(st.lists(ids, min_size=1, max_size=3), max_size=30)


@settings(max_examples=40, deadline=None)
@given(records=records, key_node=st.lists(ids, max_size=40))
def test_cardinality_equals_record_level_intersection(
    pool: GroupPool, records: list[list[bytes]], key_node: list[bytes]
) -> None:
    result = run_in_process(records, key_node, Variant.CARDINALITY, pool, max_chunk_elements=7)
    expected = sum(1 for r in records if set(r) & set(key_node))
    assert result.overlap == expected
    assert result.shared_records is None
    assert result.key_node_elements == len(set(key_node))
    assert result.partner_records == len(records)


@settings(max_examples=40, deadline=None)
@given(records=records, key_node=st.lists(ids, max_size=40))
def test_membership_names_exactly_the_shared_records(
    pool: GroupPool, records: list[list[bytes]], key_node: list[bytes]
) -> None:
    result = run_in_process(records, key_node, Variant.MEMBERSHIP, pool, max_chunk_elements=5)
    assert result.shared_records == tuple(
        i for i, r in enumerate(records) if set(r) & set(key_node)
    )
    assert result.overlap == len(result.shared_records)


@settings(max_examples=30, deadline=None)
@given(a=st.sets(ids, max_size=40), b=st.sets(ids, max_size=40))
def test_single_key_records_give_python_set_intersection(
    pool: GroupPool, a: set[bytes], b: set[bytes]
) -> None:
    result = run_in_process([[x] for x in sorted(a)], sorted(b), Variant.CARDINALITY, pool)
    assert result.overlap == len(a & b)


def test_a_record_matching_on_two_keys_counts_once(pool: GroupPool) -> None:
    records = [[b"email:a@x", b"phone:+491"], [b"email:b@x"], [b"phone:+492", b"email:c@x"]]
    key_node = [b"email:a@x", b"phone:+491", b"phone:+492"]
    result = run_in_process(records, key_node, Variant.MEMBERSHIP, pool)
    assert result.shared_records == (0, 2)


def test_worker_processes_give_the_same_result() -> None:
    records = [[f"id:{i}".encode()] for i in range(6000)]
    key_node = [f"id:{i}".encode() for i in range(3000, 9000)]
    with GroupPool(2) as pool:
        result = run_in_process(
            records, key_node, Variant.CARDINALITY, pool, max_chunk_elements=4096
        )
    assert result.overlap == 3000


def test_cardinality_shuffles_records_but_membership_keeps_order(pool: GroupPool) -> None:
    recs = [[f"id:{i}".encode()] for i in range(64)]
    scalar = random_scalar()
    chunk = next(PartnerSession(recs, Variant.MEMBERSHIP, pool).blinded_chunks(64))
    answers = {}
    for variant in Variant:
        node = KeyNodeSession(scalar, variant, 64, 1, pool, max_chunk_elements=64)
        node.accept_chunk(0, chunk)
        node.finish_upload()
        answers[variant] = b"".join(node.reblinded_chunks(64))
    ordered, shuffled = answers[Variant.MEMBERSHIP], answers[Variant.CARDINALITY]
    assert ordered == pool.mult(scalar, chunk)
    assert sorted(shuffled[i : i + 32] for i in range(0, len(shuffled), 32)) == sorted(
        ordered[i : i + 32] for i in range(0, len(ordered), 32)
    )
    assert shuffled != ordered


def _node(pool: GroupPool, records: int = 4, width: int = 1, max_chunk: int = 8) -> KeyNodeSession:
    return KeyNodeSession(
        random_scalar(), Variant.CARDINALITY, records, width, pool, max_chunk_elements=max_chunk
    )


def _elements(pool: GroupPool, n: int) -> bytes:
    return pool.blind([f"e{i}".encode() for i in range(n)], b"test", random_scalar())


def test_out_of_order_chunk_is_refused(pool: GroupPool) -> None:
    node = _node(pool)
    with pytest.raises(ProtocolError, match="out of order"):
        node.accept_chunk(1, _elements(pool, 2))


def test_repeated_chunk_is_refused(pool: GroupPool) -> None:
    node = _node(pool)
    node.accept_chunk(0, _elements(pool, 2))
    with pytest.raises(ProtocolError, match="out of order"):
        node.accept_chunk(0, _elements(pool, 2))


def test_more_elements_than_declared_is_refused(pool: GroupPool) -> None:
    node = _node(pool, records=2)
    with pytest.raises(LimitExceeded, match="declared"):
        node.accept_chunk(0, _elements(pool, 3))


def test_oversized_chunk_is_refused(pool: GroupPool) -> None:
    node = _node(pool, records=100, max_chunk=4)
    with pytest.raises(LimitExceeded, match="exceeds"):
        node.accept_chunk(0, _elements(pool, 5))


def test_incomplete_upload_is_refused(pool: GroupPool) -> None:
    node = _node(pool, records=4)
    node.accept_chunk(0, _elements(pool, 2))
    with pytest.raises(ProtocolError, match="incomplete"):
        node.finish_upload()


@pytest.mark.parametrize(
    "bad", [IDENTITY, b"\xff" * 31 + b"\x7f"], ids=["identity", "non_canonical"]
)
def test_invalid_element_fails_the_upload(pool: GroupPool, bad: bytes) -> None:
    node = _node(pool, records=3)
    node.accept_chunk(0, _elements(pool, 2) + bad)
    with pytest.raises(ProtocolError, match=r"^invalid group element$"):
        node.finish_upload()


@pytest.mark.parametrize("data", [b"", b"\x01" * 33], ids=["empty", "ragged"])
def test_malformed_chunk_is_refused(pool: GroupPool, data: bytes) -> None:
    with pytest.raises(ProtocolError):
        _node(pool).accept_chunk(0, data)


def test_reblinded_before_upload_is_refused(pool: GroupPool) -> None:
    with pytest.raises(ProtocolError, match="not complete"):
        list(_node(pool).reblinded_chunks(8))


def test_partner_refuses_a_short_answer(pool: GroupPool) -> None:
    partner = PartnerSession([[b"a"], [b"b"]], Variant.CARDINALITY, pool)
    partner.add_reblinded(_elements(pool, 1))
    with pytest.raises(ProtocolError, match="wrong number"):
        partner.result()


def test_partner_refuses_records_without_keys(pool: GroupPool) -> None:
    with pytest.raises(InputError):
        PartnerSession([[b"a"], []], Variant.CARDINALITY, pool)
