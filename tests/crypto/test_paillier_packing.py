"""Packing several columns into one plaintext: round trips, sums, and every overflow refused."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keynode.crypto.paillier import (
    OwnerEncryptor,
    PaillierPrivateKey,
    PaillierPublicKey,
    sum_ciphertexts,
)
from keynode.crypto.paillier_packing import PackingLayout
from keynode.errors import InputError, LimitExceeded, ProtocolError

KeyPair = tuple[PaillierPublicKey, PaillierPrivateKey]


@pytest.fixture(scope="module")
def owner(paillier_keypair: KeyPair) -> OwnerEncryptor:
    return OwnerEncryptor(paillier_keypair[1], rng=random.Random(11))


def test_slot_widths_follow_the_headroom_rule() -> None:
    layout = PackingLayout(column_bits=(32, 1), max_summands=1000)
    assert layout.headroom_bits == 10  # ceil(log2 1000)
    assert [layout.slot_bits(0), layout.slot_bits(1)] == [42, 11]
    assert PackingLayout((8,), max_summands=1024).slot_bits(0) == 18  # exact power of two
    assert PackingLayout((8,), max_summands=1).slot_bits(0) == 8
    noisy = PackingLayout((32, 1), max_summands=1000, noise_bits=64)
    assert [noisy.slot_bits(0), noisy.slot_bits(1)] == [65, 65]


@st.composite
def layouts_and_rows(draw: st.DrawFn) -> tuple[PackingLayout, list[list[int]]]:
    bits = tuple(draw(st.lists(st.integers(1, 40), min_size=1, max_size=5)))
    n_rows = draw(st.integers(0, 20))
    layout = PackingLayout(bits, max_summands=max(1, n_rows))
    rows = [[draw(st.integers(0, 2**b - 1)) for b in bits] for _ in range(n_rows)]
    return layout, rows


@settings(max_examples=40, deadline=None)
@given(case=layouts_and_rows())
def test_sum_of_packed_ciphertexts_equals_column_sums(
    owner: OwnerEncryptor, case: tuple[PackingLayout, list[list[int]]]
) -> None:
    layout, rows = case
    pk, sk = owner.public_key, owner.private_key
    layout.check_capacity(pk)
    layout.check_summands(len(rows))
    total = sum_ciphertexts(pk, [owner.encrypt(layout.pack(r)) for r in rows])
    expected = tuple(sum(col) for col in zip(*rows, strict=True)) or (0,) * len(layout.column_bits)
    assert layout.unpack(sk.decrypt(total)) == expected


@settings(max_examples=30, deadline=None)
@given(
    values=st.lists(st.integers(0, 2**16 - 1), min_size=3, max_size=3),
    noise=st.lists(st.integers(-(2**19) + 1, 2**19 - 1), min_size=3, max_size=3),
)
def test_negative_noise_does_not_borrow_from_the_next_slot(
    owner: OwnerEncryptor, values: list[int], noise: list[int]
) -> None:
    layout = PackingLayout((16, 16, 16), max_summands=4, noise_bits=20)
    pk, sk = owner.public_key, owner.private_key
    c = sum_ciphertexts(
        pk, [owner.encrypt(layout.pack(values)), owner.encrypt(layout.pack(values))]
    )
    c = sum_ciphertexts(pk, [c, owner.encrypt(layout.noise_plaintext(noise))])
    got = layout.unpack(sk.decrypt(c))
    assert got == tuple(2 * v + e for v, e in zip(values, noise, strict=True))


def test_value_outside_its_column_is_an_input_error() -> None:
    layout = PackingLayout((8, 8), max_summands=10)
    with pytest.raises(InputError):
        layout.pack([256, 0])
    with pytest.raises(InputError):
        layout.pack([-1, 0])
    with pytest.raises(InputError):
        layout.pack([1])


def test_more_summands_than_headroom_is_refused() -> None:
    layout = PackingLayout((8,), max_summands=10)
    layout.check_summands(10)
    with pytest.raises(LimitExceeded):
        layout.check_summands(11)


def test_noise_beyond_reserved_bits_is_refused() -> None:
    layout = PackingLayout((8,), max_summands=10, noise_bits=8)
    layout.noise_plaintext([127])
    with pytest.raises(LimitExceeded):
        layout.noise_plaintext([-128])
    with pytest.raises(InputError):
        PackingLayout((8,), max_summands=10).noise_plaintext([0])


def test_layout_larger_than_the_key_is_refused(paillier_keypair: KeyPair) -> None:
    with pytest.raises(InputError):
        PackingLayout((100,) * 5, max_summands=2**20).check_capacity(paillier_keypair[0])


def test_overflowed_or_tampered_plaintexts_never_unpack(owner: OwnerEncryptor) -> None:
    layout = PackingLayout((8, 8, 1), max_summands=2)  # a count column last
    pk, sk = owner.public_key, owner.private_key
    for summands in (3, 4, 9):  # count above N in its slot, then carried out of the top
        over = sum_ciphertexts(pk, [owner.encrypt(layout.pack([255, 0, 1]))] * summands)
        with pytest.raises(ProtocolError):
            layout.unpack(sk.decrypt(over))
    with pytest.raises(ProtocolError):
        layout.unpack(1 << layout.total_bits)
    with pytest.raises(ProtocolError):
        layout.unpack(-1)


def test_foreign_key_ciphertexts_are_refused_when_unpacked(
    paillier_keypair: KeyPair, foreign_keypair: KeyPair
) -> None:
    layout = PackingLayout((32, 1), max_summands=1000)
    pk, sk = paillier_keypair
    foreign = OwnerEncryptor(foreign_keypair[1], rng=random.Random(12))
    refused = 0
    for v in range(20):
        c = foreign.encrypt(layout.pack([v, 1]))
        try:
            pk.check_ciphertext(c)
            layout.unpack(sk.decrypt(c))
        except ProtocolError:
            refused += 1
    assert refused == 20


@pytest.mark.parametrize(
    "kwargs",
    [
        {"column_bits": (), "max_summands": 1},
        {"column_bits": (0,), "max_summands": 1},
        {"column_bits": (8,), "max_summands": 0},
        {"column_bits": (8,), "max_summands": 1, "noise_bits": 1},
    ],
)
def test_degenerate_layouts_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InputError):
        PackingLayout(**kwargs)  # type: ignore[arg-type]
