"""The hashed overlap's pure core: key agreement, digests, and the broker's match state."""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from keynode.broker.hashed import (
    DIGEST_BYTES,
    HashedMatch,
    Side,
    agree_key,
    digest_records,
    digest_set,
    public_key_bytes,
    split_digests,
)
from keynode.errors import InputError, LimitExceeded, ProtocolError

KEY = bytes(range(32))


def _mac(identifier: bytes) -> bytes:
    return hmac.new(KEY, identifier, hashlib.sha256).digest()


def _ident(n: int) -> bytes:
    return f"email:c{n}@example.com".encode()


def _run(
    records: list[list[bytes]], key_node: list[bytes], *, membership: bool, chunk: int = 3
) -> tuple[int, tuple[int, ...] | None]:
    """Both sides agree a key, digest, upload in small chunks; the broker matches."""
    partner_key, node_key = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    k_partner = agree_key(partner_key, public_key_bytes(node_key), "match-1")
    k_node = agree_key(node_key, public_key_bytes(partner_key), "match-1")
    width = max(len(r) for r in records)
    match = HashedMatch(len(records), width, max_key_node_digests=1000, max_chunk_digests=chunk)
    uploads = {
        Side.PARTNER: digest_records(k_partner, records, width),
        Side.KEY_NODE: digest_set(k_node, key_node),
    }
    for side, packed in uploads.items():
        match.begin(side)
        step = chunk * DIGEST_BYTES
        for seq, start in enumerate(range(0, len(packed), step)):
            match.accept(side, seq, packed[start : start + step])
        match.finish(side)
    result = match.result(membership)
    return result.overlap, result.shared_records


records_strategy = st.lists(
    st.lists(st.integers(0, 40), min_size=1, max_size=3), min_size=1, max_size=30
)


@settings(max_examples=40, deadline=None)
@given(records=records_strategy, key_node=st.sets(st.integers(0, 40), min_size=1))
def test_result_is_the_record_level_set_intersection(
    records: list[list[int]], key_node: set[int]
) -> None:
    partner = [[_ident(n) for n in record] for record in records]
    expected = tuple(i for i, record in enumerate(records) if set(record) & key_node)
    node = [_ident(n) for n in key_node]
    assert _run(partner, node, membership=True) == (len(expected), expected)
    assert _run(partner, node, membership=False) == (len(expected), None)


def test_agreed_key_is_shared_and_bound_to_the_match() -> None:
    a, b = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    key = agree_key(a, public_key_bytes(b), "m1")
    assert key == agree_key(b, public_key_bytes(a), "m1")
    assert len(key) == 32
    assert key != agree_key(a, public_key_bytes(b), "m2")
    c = X25519PrivateKey.generate()
    assert key != agree_key(a, public_key_bytes(c), "m1")


@pytest.mark.parametrize("public", [b"", b"\x01" * 31, b"\x00" * 32, b"\x01" + b"\x00" * 31])
def test_bad_or_small_order_public_keys_are_refused(public: bytes) -> None:
    with pytest.raises(ProtocolError, match="invalid public key"):
        agree_key(X25519PrivateKey.generate(), public, "m1")


def test_record_digests_are_hmac_sha256_padded_to_the_width() -> None:
    records = [[b"a", b"b"], [b"c"], [b"d", b"e"]]
    packed = digest_records(KEY, records, 2, random_bytes=lambda n: b"\xaa" * n)
    assert split_digests(packed) == [
        _mac(b"a"), _mac(b"b"), _mac(b"c"), b"\xaa" * 32, _mac(b"d"), _mac(b"e")
    ]  # fmt: skip
    assert digest_records(KEY, [[b"a"]], 1) == _mac(b"a")


def test_padding_is_fresh_random_bytes() -> None:
    first, second = (digest_records(KEY, [[b"a"]], 3) for _ in range(2))
    assert first[:32] == second[:32] and len(first) == 96
    assert first[32:64] != first[64:] and first[32:] != second[32:]


@pytest.mark.parametrize(
    ("records", "width"), [([[b"a"], []], 1), ([[b"a", b"b"]], 1), ([[b"a"]], 0)]
)
def test_records_that_do_not_fit_the_width_are_refused(
    records: list[list[bytes]], width: int
) -> None:
    with pytest.raises(InputError):
        digest_records(KEY, records, width)


def test_key_node_digests_are_distinct_and_sorted_by_digest() -> None:
    packed = digest_set(KEY, [b"z", b"a", b"m", b"a"])
    assert split_digests(packed) == sorted({_mac(b"z"), _mac(b"a"), _mac(b"m")})


# -- refused uploads ------------------------------------------------------------------------

D = b"\x11" * DIGEST_BYTES


def _match(records: int = 2, width: int = 1) -> HashedMatch:
    match = HashedMatch(records, width, max_key_node_digests=3, max_chunk_digests=2)
    match.begin(Side.PARTNER)
    match.begin(Side.KEY_NODE)
    return match


@pytest.mark.parametrize(
    ("chunks", "error", "message"),
    [
        ([(1, D)], ProtocolError, "out of order"),
        ([(0, D), (0, D)], ProtocolError, "out of order"),
        ([(0, D[:-1])], ProtocolError, "whole 32-byte digests"),
        ([(0, b"")], ProtocolError, "whole 32-byte digests"),
        ([(0, D * 3)], LimitExceeded, "exceeds 2"),
        ([(0, D * 2), (1, D)], LimitExceeded, "more than the 2"),
    ],
)
def test_bad_partner_chunks_are_refused(
    chunks: list[tuple[int, bytes]], error: type[Exception], message: str
) -> None:
    match = _match()
    with pytest.raises(error, match=message):
        for sequence, packed in chunks:
            match.accept(Side.PARTNER, sequence, packed)


def test_incomplete_and_repeated_uploads_are_refused() -> None:
    match = _match()
    match.accept(Side.PARTNER, 0, D)
    with pytest.raises(ProtocolError, match="incomplete: 1 of 2"):
        match.finish(Side.PARTNER)
    with pytest.raises(ProtocolError, match="already started"):
        match.begin(Side.PARTNER)
    with pytest.raises(ProtocolError, match="at least one digest"):
        match.finish(Side.KEY_NODE)


def test_key_node_upload_is_capped() -> None:
    match = _match()
    match.accept(Side.KEY_NODE, 0, D * 2)
    with pytest.raises(LimitExceeded, match="more than the 3"):
        match.accept(Side.KEY_NODE, 1, D * 2)


def test_chunks_before_begin_and_results_before_both_uploads_are_refused() -> None:
    match = HashedMatch(1, 1, max_key_node_digests=3)
    with pytest.raises(ProtocolError, match="not begun"):
        match.accept(Side.PARTNER, 0, D)
    match.begin(Side.PARTNER)
    match.accept(Side.PARTNER, 0, D)
    match.finish(Side.PARTNER)
    with pytest.raises(ProtocolError, match="not complete"):
        match.result(membership=False)


def test_discard_drops_every_digest_and_ends_the_match() -> None:
    match = _match(records=2)
    match.accept(Side.PARTNER, 0, D * 2)
    match.finish(Side.PARTNER)
    match.accept(Side.KEY_NODE, 0, D)
    match.finish(Side.KEY_NODE)
    assert match.ready and match.held_digests() == 3
    assert match.result(membership=True).shared_records == (0, 1)
    match.discard()
    assert match.held_digests() == 0 and not match.ready
    with pytest.raises(ProtocolError, match="ended"):
        match.begin(Side.PARTNER)
    with pytest.raises(ProtocolError, match="not complete"):
        match.result(membership=False)


def test_an_empty_match_is_refused() -> None:
    with pytest.raises(ProtocolError):
        HashedMatch(0, 1, max_key_node_digests=3)


DOC = Path(__file__).parents[2] / "docs" / "hashed_overlap.md"


def test_the_docs_example_runs() -> None:
    (block,) = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    exec(compile(block, str(DOC), "exec"), {})
