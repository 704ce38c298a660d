"""Intersection-sum and per-segment aggregates: plaintext equality, k, noise, budgets."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keynode.crypto.batch import GroupPool
from keynode.crypto.budget import EpsilonBudget
from keynode.crypto.noise import laplace_noise
from keynode.crypto.paillier import PaillierPrivateKey, generate_keypair
from keynode.errors import LimitExceeded, ProtocolError
from keynode.protocols.aggregate import (
    AggregatePolicy,
    Aggregator,
    AggregatorRequest,
    HolderHeader,
    RecordChunk,
    SegmentAggregate,
    ValueHolder,
    make_layout,
    run_in_process,
    sensitivities,
)

BITS = (8, 4)


@pytest.fixture(scope="module")
def key() -> PaillierPrivateKey:
    return generate_keypair(512, rng=random.Random(21), allow_weak=True)[1]


@pytest.fixture(scope="module")
def pool() -> Iterator[GroupPool]:
    with GroupPool(workers=1) as p:
        yield p


def policy(k: int, epsilon: Fraction | None = None) -> AggregatePolicy:
    return AggregatePolicy(k=k, epsilon=epsilon, min_key_bits=512)


def ident(i: int) -> bytes:
    return f"customer-{i}@example.org".encode()


def expected(
    records: list[list[int]],
    values: list[list[int]],
    segment_of: dict[int, int],
    catalogue: list[int],
    k: int,
) -> tuple[SegmentAggregate, ...]:
    """The plaintext computation: each shared record once, in its lowest segment."""
    sums = {s: [0] * len(BITS) for s in catalogue}
    counts = dict.fromkeys(catalogue, 0)
    for record, row in zip(records, values, strict=True):
        found = [segment_of[i] for i in record if i in segment_of]
        if found:
            s = min(found)
            counts[s] += 1
            sums[s] = [a + b for a, b in zip(sums[s], row, strict=True)]
    return tuple(
        SegmentAggregate(s, tuple(sums[s]), counts[s])
        if counts[s] >= k
        else SegmentAggregate(s, None, None)
        for s in catalogue
    )


def run(
    key: PaillierPrivateKey,
    pool: GroupPool,
    records: list[list[int]],
    values: list[list[int]],
    segment_of: dict[int, int] | None,
    pol: AggregatePolicy,
    budget: EpsilonBudget | None = None,
    rng: random.Random | None = None,
) -> tuple[tuple[SegmentAggregate, ...], EpsilonBudget | None]:
    ids = sorted(segment_of) if segment_of is not None else list(range(0, 40, 2))
    aggregator = Aggregator(
        [ident(i) for i in ids],
        pool,
        pol,
        segments=[segment_of[i] for i in ids] if segment_of is not None else None,
        catalogue=[0, 1, 2] if segment_of is not None else None,
        rng=rng,
    )
    holder = ValueHolder(
        [[ident(i) for i in r] for r in records], values, BITS, key, pool, epsilon=pol.epsilon
    )
    return run_in_process(aggregator, holder, budget=budget, max_records=5)


records_st = st.lists(
    st.lists(st.integers(0, 40), min_size=1, max_size=2, unique=True), min_size=0, max_size=12
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=records_st,
    seed=st.integers(0, 2**32),
    segment_of=st.dictionaries(st.integers(0, 40), st.integers(0, 2), max_size=25),
    k=st.integers(1, 3),
)
def test_per_segment_sums_equal_the_plaintext_computation(
    key: PaillierPrivateKey,
    pool: GroupPool,
    records: list[list[int]],
    seed: int,
    segment_of: dict[int, int],
    k: int,
) -> None:
    rng = random.Random(seed)
    values = [[rng.randrange(2**b) for b in BITS] for _ in records]
    got, _ = run(key, pool, records, values, segment_of, policy(k))
    assert got == expected(records, values, segment_of, [0, 1, 2], k)


def test_intersection_sum_without_segments(key: PaillierPrivateKey, pool: GroupPool) -> None:
    records = [[i] for i in range(10)]  # the aggregator holds the even ids 0..38
    values = [[i, i % 16] for i in range(10)]
    got, _ = run(key, pool, records, values, None, policy(1))
    assert got == (SegmentAggregate(0, (0 + 2 + 4 + 6 + 8, 0 + 2 + 4 + 6 + 8), 5),)


def test_segments_under_k_are_suppressed(key: PaillierPrivateKey, pool: GroupPool) -> None:
    records = [[1], [2], [3], [4]]
    values = [[1, 1]] * 4
    segment_of = {1: 0, 2: 0, 3: 0, 4: 1}
    got, _ = run(key, pool, records, values, segment_of, policy(2))
    assert got == (
        SegmentAggregate(0, (3, 3), 3),
        SegmentAggregate(1, None, None),
        SegmentAggregate(2, None, None),
    )
    assert [a.suppressed for a in got] == [False, True, True]


def test_noise_is_added_under_encryption_and_charged(
    key: PaillierPrivateKey, pool: GroupPool
) -> None:
    eps = Fraction(1, 2)
    records = [[i] for i in range(6)]
    values = [[200, 9]] * 6
    segment_of = {i: 0 for i in range(6)}
    budget = EpsilonBudget("bank", Fraction(1))
    got, budget = run(
        key, pool, records, values, segment_of, policy(2, eps), budget, random.Random(5)
    )
    assert budget is not None and budget.spent == eps
    # Reproduce the aggregator's draws: shuffle, then noise for segment 0, in that order.
    rng = random.Random(5)
    rng.shuffle(list(range(6)))
    noise = laplace_noise(eps, sensitivities((*BITS, 1)), rng)
    assert got[0] == SegmentAggregate(0, (1200 + noise[0], 54 + noise[1]), 6 + noise[2])
    assert got[0] != SegmentAggregate(0, (1200, 54), 6)  # noise of scale 542 is not all zero


def test_budget_refuses_once_spent(key: PaillierPrivateKey, pool: GroupPool) -> None:
    budget: EpsilonBudget | None = EpsilonBudget("bank", Fraction(1))
    records, values, segment_of = [[1]], [[1, 1]], {1: 0}
    for _ in range(2):
        _, budget = run(key, pool, records, values, segment_of, policy(1, Fraction(1, 2)), budget)
    with pytest.raises(LimitExceeded):
        run(key, pool, records, values, segment_of, policy(1, Fraction(1, 2)), budget)


def test_results_are_rerandomised_and_labels_unlinkable(
    key: PaillierPrivateKey, pool: GroupPool
) -> None:
    ids = list(range(8))
    aggregator = Aggregator([ident(i) for i in ids], pool, policy(1), segments=[i % 2 for i in ids])
    holder = ValueHolder([[ident(i)] for i in ids], [[i, 0] for i in ids], BITS, key, pool)
    request = aggregator.request()
    header = holder.respond(request)
    assert request.labels is not None and header.reblinded_labels is not None
    sent = {request.labels[i : i + 64] for i in range(0, len(request.labels), 64)}
    back = {header.reblinded_labels[i : i + 64] for i in range(0, len(header.reblinded_labels), 64)}
    assert len(back) == 8 and not sent & back  # nothing to link returned labels by
    aggregator.accept_header(header)
    (chunk,) = holder.record_chunks(100)
    aggregator.add_records(chunk)
    response, _ = aggregator.finish()
    # The plain product of each segment's ciphertexts is not what comes back.
    pk, size = key.public_key, key.public_key.ciphertext_bytes
    product = {0: 1, 1: 1}
    for i in range(0, len(chunk.ciphertexts), size):
        c = pk.ciphertext_from_bytes(chunk.ciphertexts[i : i + size])
        record = holder_layout_value(key, c)
        product[record % 2] = product[record % 2] * c % pk.nsquare
    for segment, data in response.released:
        returned = pk.ciphertext_from_bytes(data)
        assert returned != product[segment]
        assert key.decrypt(returned) == key.decrypt(product[segment])


def holder_layout_value(key: PaillierPrivateKey, c: int) -> int:
    """The first column of one record's packed plaintext (its id in the test above)."""
    return make_layout(BITS, 8, None).unpack(key.decrypt(c))[0]


def _started(
    key: PaillierPrivateKey, pool: GroupPool, pol: AggregatePolicy | None = None
) -> tuple[Aggregator, ValueHolder, HolderHeader]:
    aggregator = Aggregator([ident(i) for i in range(4)], pool, pol or policy(1))
    holder = ValueHolder([[ident(i)] for i in range(4)], [[1, 1]] * 4, BITS, key, pool)
    return aggregator, holder, holder.respond(aggregator.request())


@pytest.mark.parametrize(
    "tamper",
    [
        {"reblinded": b""},
        {"width": 0},
        {"record_count": -1},
        {"column_bits": (2000, 2000)},
        {"public_key": b"\x01" * 64},
    ],
    ids=["missing elements", "width", "record count", "layout too wide", "bad key"],
)
def test_malformed_headers_are_refused(
    key: PaillierPrivateKey, pool: GroupPool, tamper: dict[str, object]
) -> None:
    aggregator, _, header = _started(key, pool)
    fields = {**header.__dict__, **tamper}
    with pytest.raises(ProtocolError):
        aggregator.accept_header(HolderHeader(**fields))  # type: ignore[arg-type]


def test_malformed_or_incomplete_record_streams_are_refused(
    key: PaillierPrivateKey, pool: GroupPool
) -> None:
    aggregator, holder, header = _started(key, pool)
    with pytest.raises(ProtocolError):
        aggregator.add_records(RecordChunk(b"", b""))  # before the header
    aggregator.accept_header(header)
    chunks = list(holder.record_chunks(2))
    with pytest.raises(ProtocolError):
        aggregator.add_records(RecordChunk(chunks[0].elements, chunks[0].ciphertexts[:-1]))
    aggregator.add_records(chunks[0])
    with pytest.raises(ProtocolError):
        aggregator.finish()  # half the declared records
    aggregator.add_records(chunks[1])
    with pytest.raises(ProtocolError):
        aggregator.add_records(chunks[1])  # more than declared


def test_invalid_ciphertexts_of_matched_records_are_refused(
    key: PaillierPrivateKey, pool: GroupPool
) -> None:
    aggregator, holder, header = _started(key, pool)
    aggregator.accept_header(header)
    (whole,) = holder.record_chunks(4)
    with pytest.raises(ProtocolError):
        aggregator.add_records(RecordChunk(whole.elements, bytes(len(whole.ciphertexts))))


def test_foreign_key_ciphertexts_are_refused_by_the_holder(
    key: PaillierPrivateKey, pool: GroupPool
) -> None:
    other = generate_keypair(512, rng=random.Random(22), allow_weak=True)[1]
    aggregator = Aggregator([ident(i) for i in range(4)], pool, policy(1))
    mine = ValueHolder([[ident(i)] for i in range(4)], [[1, 1]] * 4, BITS, key, pool)
    theirs = ValueHolder([[ident(i)] for i in range(4)], [[1, 1]] * 4, BITS, other, pool)
    aggregator.accept_header(theirs.respond(aggregator.request()))
    for chunk in theirs.record_chunks(10):
        aggregator.add_records(chunk)
    response, _ = aggregator.finish()
    with pytest.raises(ProtocolError):
        mine.result(response)


def test_holder_refuses_a_request_with_labels_but_no_key(
    key: PaillierPrivateKey, pool: GroupPool
) -> None:
    holder = ValueHolder([[ident(1)]], [[1, 1]], BITS, key, pool)
    with pytest.raises(ProtocolError):
        holder.respond(AggregatorRequest(b"", labels=b""))


def test_too_many_records_hit_the_cap(key: PaillierPrivateKey, pool: GroupPool) -> None:
    aggregator, _, header = _started(key, pool, AggregatePolicy(1, min_key_bits=512, max_records=3))
    with pytest.raises(LimitExceeded):
        aggregator.accept_header(header)


def test_both_sides_derive_the_same_layout() -> None:
    layout = make_layout(BITS, 1000, Fraction(1))
    assert layout.column_bits == (8, 4, 1)
    assert layout.noise_bits == (255 + 15 + 1).bit_length() + 10


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    reblinded=st.binary(max_size=200),
    width=st.integers(-2, 10),
    record_count=st.integers(-2, 10**8),
    column_bits=st.lists(st.integers(-5, 3000), max_size=4).map(tuple),
    labels=st.none() | st.binary(max_size=300),
)
def test_arbitrary_headers_fail_only_with_keynode_errors(
    key: PaillierPrivateKey,
    pool: GroupPool,
    reblinded: bytes,
    width: int,
    record_count: int,
    column_bits: tuple[int, ...],
    labels: bytes | None,
) -> None:
    aggregator = Aggregator([ident(i) for i in range(2)], pool, policy(1), segments=[0, 1])
    aggregator.request()
    header = HolderHeader(
        key.public_key.to_bytes(), column_bits, width, record_count, reblinded, labels
    )
    with contextlib.suppress(ProtocolError, LimitExceeded):
        aggregator.accept_header(header)
