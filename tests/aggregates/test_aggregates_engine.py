"""The aggregates engine without transport: catalogue, shapes, caps, order, expiry."""

from __future__ import annotations

from fractions import Fraction

import pytest
from aggregates_support import (
    BANK_IDS,
    BANK_RECORDS,
    BANK_VALUES,
    BITS,
    KEY_NODE,
    PROFILE,
    expected,
)

from keynode.aggregates.engine import (
    AggregateEngine,
    AggregateLimits,
    SegmentedIdentifiers,
    SessionShape,
)
from keynode.crypto.batch import GroupPool
from keynode.crypto.paillier import PaillierPrivateKey
from keynode.errors import InputError, LimitExceeded, NotFound, ProfileMismatch, ProtocolError
from keynode.protocols.aggregate import AggregateResponse, AggregatorRequest, ValueHolder


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def engine(pool: GroupPool, clock: Clock | None = None, **limits: object) -> AggregateEngine:
    settings = AggregateLimits(min_key_bits=1024, **limits)  # type: ignore[arg-type]
    return AggregateEngine(KEY_NODE, PROFILE, pool, limits=settings, clock=clock or Clock())


def shape(key: PaillierPrivateKey, **changes: object) -> SessionShape:
    fields: dict[str, object] = {
        "record_count": len(BANK_RECORDS),
        "record_width": 1,
        "column_bits": BITS,
        "public_key": key.public_key.to_bytes(),
    }
    return SessionShape(**{**fields, **changes})  # type: ignore[arg-type]


def test_segments_become_a_sorted_catalogue_and_each_identifier_keeps_its_first() -> None:
    ids = SegmentedIdentifiers.from_records(
        [[b"a", b"b"], [b"b"], [b"c"], [b"d"]], ["silver", "gold", None, ""]
    )
    assert dict(zip(ids.keys, ids.segments, strict=True)) == {b"a": "silver", b"b": "gold"}
    assert ids.catalogue == ("gold", "silver")
    with pytest.raises(InputError):
        SegmentedIdentifiers((b"a", b"a"), ("x", "y"))


def test_a_whole_session_in_process_equals_the_plaintext_computation(
    pool: GroupPool, partner_key: PaillierPrivateKey
) -> None:
    agg = engine(pool, max_chunk_elements=100)
    opened = agg.open_session("bank", PROFILE, shape(partner_key), k=50)
    assert opened.segments == ("bronze", "gold", "silver") and opened.k == 50
    parts = list(agg.request_chunks(opened.session_id))
    assert len(parts) == 4 and parts[0][2] and not parts[1][2]  # the label key comes once
    holder = ValueHolder(BANK_RECORDS, BANK_VALUES, BITS, partner_key, pool)
    header = holder.respond(
        AggregatorRequest(b"".join(p[0] for p in parts), b"".join(p[1] for p in parts), parts[0][2])
    )
    assert header.reblinded_labels is not None
    step = 100
    assert (
        agg.upload_header(
            opened.session_id,
            (
                (
                    n,
                    header.reblinded[i * 32 : (i + step) * 32],
                    header.reblinded_labels[i * 64 : (i + step) * 64],
                )
                for n, i in enumerate(range(0, 400, step))
            ),
        )
        == 400
    )
    chunks = list(holder.record_chunks(60))
    assert (
        agg.upload_records(opened.session_id, [(0, chunks[0].elements, chunks[0].ciphertexts)])
        == 60
    )
    rest = [(n + 1, c.elements, c.ciphertexts) for n, c in enumerate(chunks[1:])]
    assert agg.upload_records(opened.session_id, rest) == len(BANK_RECORDS)
    release = agg.finish(opened.session_id)
    assert release.suppressed == ("bronze", "gold")
    assert release.input_count == len(BANK_RECORDS) and release.smallest_released == 80
    index = {name: i for i, name in enumerate(opened.segments)}
    results = holder.result(
        AggregateResponse(
            tuple((index[s], c) for s, c in release.released),
            tuple(index[s] for s in release.suppressed),
        )
    )
    got = {opened.segments[r.segment]: None if r.suppressed else (r.sums, r.count) for r in results}
    assert got == expected(BANK_IDS, BANK_VALUES, 50)
    assert agg.open_sessions() == []


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"record_count": 0}, ProtocolError),
        ({"record_width": 9}, ProtocolError),
        ({"record_count": 10_001}, LimitExceeded),
        ({"column_bits": ()}, ProtocolError),
        ({"column_bits": (65,)}, ProtocolError),
        ({"column_bits": (64,) * 16}, ProtocolError),  # wider than a 1024-bit plaintext
        ({"epsilon": Fraction(-1)}, ProtocolError),
        ({"epsilon": Fraction(2)}, LimitExceeded),  # more than the whole budget
    ],
)
def test_shapes_outside_the_limits_are_refused(
    pool: GroupPool, partner_key: PaillierPrivateKey, changes: dict[str, object], error: type
) -> None:
    agg = engine(pool, max_records=10_000)
    with pytest.raises(error):
        agg.open_session("bank", PROFILE, shape(partner_key, **changes), k=50)
    assert agg.open_sessions() == []


def test_profile_session_cap_and_expiry(pool: GroupPool, partner_key: PaillierPrivateKey) -> None:
    clock = Clock()
    agg = engine(pool, clock, max_sessions=2, session_ttl_s=60)
    with pytest.raises(ProfileMismatch):
        agg.open_session("bank", "other:0001", shape(partner_key), k=50)
    first = agg.open_session("bank", PROFILE, shape(partner_key), k=50).session_id
    agg.open_session("bank", PROFILE, shape(partner_key), k=50)
    with pytest.raises(LimitExceeded):
        agg.open_session("bank", PROFILE, shape(partner_key), k=50)
    clock.now = 61
    with pytest.raises(NotFound):
        agg.session_partner(first)
    agg.open_session("media", PROFILE, shape(partner_key), k=50)
    assert agg.close_partner_sessions("media") == 1 and agg.open_sessions() == []


def test_calls_out_of_order_and_gaps_end_the_session(
    pool: GroupPool, partner_key: PaillierPrivateKey
) -> None:
    agg = engine(pool)
    sid = agg.open_session("bank", PROFILE, shape(partner_key), k=50).session_id
    with pytest.raises(ProtocolError, match="out of order"):
        agg.upload_records(sid, [])
    list(agg.request_chunks(sid))
    with pytest.raises(ProtocolError, match="out of order"):
        list(agg.request_chunks(sid))
    with pytest.raises(ProtocolError, match="chunk 1 arrived where 0"):
        agg.upload_header(sid, [(1, bytes(32), bytes(64))])
    with pytest.raises(NotFound):
        agg.finish(sid)


def test_one_segment_is_a_plain_intersection_sum_without_labels(
    pool: GroupPool, partner_key: PaillierPrivateKey
) -> None:
    ids = SegmentedIdentifiers.from_records([[k] for k in KEY_NODE.keys], ["all"] * 400)
    agg = AggregateEngine(ids, PROFILE, pool, limits=AggregateLimits(min_key_bits=1024))
    sid = agg.open_session("bank", PROFILE, shape(partner_key), k=50).session_id
    ((elements, labels, label_key),) = list(agg.request_chunks(sid))
    assert labels == b"" and label_key == b""
    holder = ValueHolder(BANK_RECORDS, BANK_VALUES, BITS, partner_key, pool)
    header = holder.respond(AggregatorRequest(elements))
    other = agg.open_session("bank", PROFILE, shape(partner_key), k=50).session_id
    list(agg.request_chunks(other))
    with pytest.raises(ProtocolError, match="label"):  # labels where none were sent
        agg.upload_header(other, [(0, header.reblinded, bytes(64 * 400))])
    agg.upload_header(sid, [(0, header.reblinded, b"")])
    (chunk,) = list(holder.record_chunks(len(BANK_RECORDS)))
    agg.upload_records(sid, [(0, chunk.elements, chunk.ciphertexts)])
    release = agg.finish(sid)
    assert release.suppressed == () and release.smallest_released == 100
    ((_, ciphertext),) = release.released
    (result,) = holder.result(AggregateResponse(((0, ciphertext),), ()))
    shared = [row for i, row in zip(BANK_IDS, BANK_VALUES, strict=True) if i < 400]
    assert result.sums == tuple(map(sum, zip(*shared, strict=True))) and result.count == 100
