"""Paillier core: correctness against the textbook formulas, phe interop, validation."""

from __future__ import annotations

import contextlib
import logging
import math
import random

import gmpy2
import phe
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keynode.crypto.paillier import (
    ExponentLength,
    FixedBaseTable,
    OwnerEncryptor,
    PaillierPrivateKey,
    PaillierPublicKey,
    PublicEncryptor,
    RandomnessPool,
    add,
    add_plain,
    generate_keypair,
    mul_plain,
    rerandomize,
    sum_ciphertexts,
)
from keynode.errors import InputError, ProtocolError

KeyPair = tuple[PaillierPublicKey, PaillierPrivateKey]
SIGNED = st.integers(min_value=-(2**200), max_value=2**200)


def textbook_decrypt(sk: PaillierPrivateKey, c: int) -> int:
    """``L(c^lambda mod n^2) * mu mod n``: the plain formula CRT decryption must match."""
    n, nsq = sk.public_key.n, sk.public_key.nsquare
    lam = math.lcm(int(sk.p) - 1, int(sk.q) - 1)
    mu = gmpy2.invert((gmpy2.powmod(n + 1, lam, nsq) - 1) // n, n)
    return int((gmpy2.powmod(c, lam, nsq) - 1) // n * mu % n)


def to_phe(keys: KeyPair) -> tuple[phe.PaillierPublicKey, phe.PaillierPrivateKey]:
    pub = phe.PaillierPublicKey(int(keys[0].n))
    return pub, phe.PaillierPrivateKey(pub, int(keys[1].p), int(keys[1].q))


@pytest.fixture(scope="module")
def owner(paillier_keypair: KeyPair) -> OwnerEncryptor:
    return OwnerEncryptor(paillier_keypair[1], rng=random.Random(3))


@pytest.fixture(scope="module")
def public_encryptor(paillier_keypair: KeyPair) -> PublicEncryptor:
    return PublicEncryptor(paillier_keypair[0], rng=random.Random(4))


# -- keys -----------------------------------------------------------------------------


def test_generated_key_has_exact_size_and_blum_primes(paillier_keypair: KeyPair) -> None:
    pk, sk = paillier_keypair
    assert pk.key_bits == 512
    assert sk.p % 4 == 3 and sk.q % 4 == 3 and sk.p != sk.q


def test_weak_key_sizes_need_the_explicit_flag() -> None:
    with pytest.raises(InputError):
        generate_keypair(1024)
    with pytest.raises(InputError):
        generate_keypair(256, allow_weak=True)


def test_private_key_repr_hides_the_factors(paillier_keypair: KeyPair) -> None:
    assert str(int(paillier_keypair[1].p)) not in repr(paillier_keypair[1])


# -- encryption and decryption --------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(value=SIGNED)
def test_owner_encryption_round_trips(owner: OwnerEncryptor, value: int) -> None:
    sk = owner.private_key
    assert sk.decrypt(owner.encrypt(value)) == value


@settings(max_examples=30, deadline=None)
@given(value=SIGNED)
def test_public_encryption_round_trips(
    paillier_keypair: KeyPair, public_encryptor: PublicEncryptor, value: int
) -> None:
    assert paillier_keypair[1].decrypt(public_encryptor.encrypt(value)) == value


@settings(max_examples=30, deadline=None)
@given(exponent=st.integers(min_value=0, max_value=2 ** (2 * 512 + 128) - 1))
def test_owner_randomizer_is_h_to_the_n_to_the_a(owner: OwnerEncryptor, exponent: int) -> None:
    pk = owner.public_key
    hs = gmpy2.powmod(owner.h, pk.n, pk.nsquare)
    assert owner.randomizer(exponent) == gmpy2.powmod(hs, exponent, pk.nsquare)


@settings(max_examples=50, deadline=None)
@given(base=st.integers(min_value=2, max_value=10**40), exponent=st.integers(0, 2**130 - 1))
def test_fixed_base_table_matches_powmod(base: int, exponent: int) -> None:
    modulus = 2**127 - 1
    assert FixedBaseTable(base, modulus, 130).pow(exponent) == pow(base, exponent, modulus)


def test_exponent_lengths(paillier_keypair: KeyPair) -> None:
    assert ExponentLength.FULL.bits(2048) == 2 * 2048 + 128
    assert ExponentLength.SHORT_DJN.bits(2048) == 1024
    short = OwnerEncryptor(paillier_keypair[1], exponent_length=ExponentLength.SHORT_DJN)
    assert short.exponent_bits == 256
    assert paillier_keypair[1].decrypt(short.encrypt(-5)) == -5


def test_injected_rng_makes_encryption_reproducible(paillier_keypair: KeyPair) -> None:
    sk = paillier_keypair[1]
    a = OwnerEncryptor(sk, rng=random.Random(9)).encrypt(42)
    b = OwnerEncryptor(sk, rng=random.Random(9)).encrypt(42)
    c = OwnerEncryptor(sk, rng=random.Random(10)).encrypt(42)
    assert a == b != c


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**64))
def test_crt_decryption_equals_textbook_formula(paillier_keypair: KeyPair, seed: int) -> None:
    pk, sk = paillier_keypair
    c = random.Random(seed).randrange(1, int(pk.nsquare))
    if gmpy2.gcd(c, pk.n) != 1:
        return
    assert sk.raw_decrypt(c) == textbook_decrypt(sk, c)


def test_encode_and_decode_bounds(paillier_keypair: KeyPair) -> None:
    pk = paillier_keypair[0]
    assert pk.decode(pk.encode(pk.max_int)) == pk.max_int
    assert pk.decode(pk.encode(-pk.max_int)) == -pk.max_int
    with pytest.raises(InputError):
        pk.encode(pk.max_int + 1)
    with pytest.raises(ProtocolError):
        pk.decode(pk.max_int + 1)  # the overflow band never decodes to a wrong number


# -- phe interoperability -------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(value=SIGNED)
def test_keynode_ciphertext_decrypts_with_phe(
    paillier_keypair: KeyPair, owner: OwnerEncryptor, value: int
) -> None:
    phe_pub, phe_priv = to_phe(paillier_keypair)
    assert phe_priv.decrypt(phe.EncryptedNumber(phe_pub, int(owner.encrypt(value)), 0)) == value


@settings(max_examples=20, deadline=None)
@given(value=SIGNED)
def test_phe_ciphertext_decrypts_with_keynode(paillier_keypair: KeyPair, value: int) -> None:
    phe_pub, _ = to_phe(paillier_keypair)
    c = phe_pub.encrypt(value).ciphertext()
    assert paillier_keypair[1].decrypt(gmpy2.mpz(c)) == value


def test_phe_sums_keynode_ciphertexts_and_keynode_sums_phes(
    paillier_keypair: KeyPair, owner: OwnerEncryptor
) -> None:
    pk, sk = paillier_keypair
    phe_pub, phe_priv = to_phe(paillier_keypair)
    mixed = phe.EncryptedNumber(phe_pub, int(owner.encrypt(7)), 0) + phe_pub.encrypt(-3)
    assert phe_priv.decrypt(mixed) == 4
    total = sum_ciphertexts(pk, [owner.encrypt(5), gmpy2.mpz(phe_pub.encrypt(6).ciphertext())])
    assert sk.decrypt(total) == 11


# -- homomorphic operations -----------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(a=SIGNED, b=SIGNED, k=st.integers(-(2**60), 2**60))
def test_homomorphic_operations_equal_plaintext_arithmetic(
    owner: OwnerEncryptor, a: int, b: int, k: int
) -> None:
    pk, sk = owner.public_key, owner.private_key
    ca, cb = owner.encrypt(a), owner.encrypt(b)
    assert sk.decrypt(add(pk, ca, cb)) == a + b
    assert sk.decrypt(add_plain(pk, ca, b)) == a + b
    assert sk.decrypt(mul_plain(pk, ca, k)) == a * k


@settings(max_examples=10, deadline=None)
@given(values=st.lists(st.integers(-(2**64), 2**64), max_size=40))
def test_sum_of_many_equals_plaintext_sum(owner: OwnerEncryptor, values: list[int]) -> None:
    pk, sk = owner.public_key, owner.private_key
    assert sk.decrypt(sum_ciphertexts(pk, [owner.encrypt(v) for v in values])) == sum(values)


def test_rerandomize_keeps_the_plaintext_and_changes_the_ciphertext(owner: OwnerEncryptor) -> None:
    pk, sk = owner.public_key, owner.private_key
    c = owner.encrypt(123)
    fresh = rerandomize(pk, c, rng=random.Random(5))
    assert fresh != c and sk.decrypt(fresh) == 123


def test_randomness_pool_hands_out_each_randomizer_once(owner: OwnerEncryptor) -> None:
    pool = RandomnessPool(owner)
    pool.fill(3)
    cts = [pool.encrypt(1) for _ in range(5)]  # two past the end: computed on demand
    assert len(pool) == 0 and len(set(cts)) == 5
    assert all(owner.private_key.decrypt(c) == 1 for c in cts)


# -- wire format and validation -------------------------------------------------------


def test_public_key_round_trips(paillier_keypair: KeyPair) -> None:
    pk = paillier_keypair[0]
    data = pk.to_bytes()
    assert len(data) == 64
    assert PaillierPublicKey.from_bytes(data, min_bits=512) == pk


def _bad_keys(pk: PaillierPublicKey) -> dict[str, bytes]:
    n = int(pk.n)
    prime = int(gmpy2.next_prime(n))
    return {
        "below the policy minimum": pk.to_bytes(),
        "leading zero byte": b"\x00" + pk.to_bytes(),
        "even": (n + 1).to_bytes(64, "big"),
        "prime": prime.to_bytes(64, "big"),
        "square": (int(gmpy2.next_prime(2**255 + 2**254)) ** 2).to_bytes(64, "big"),
        "small factor": (3 * int(gmpy2.next_prime(2**510))).to_bytes(64, "big"),
        "too large": (2**4097 + 1).to_bytes(513, "big"),
        "empty": b"",
    }


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("below the policy minimum", "size"),
        ("leading zero byte", "length"),
        ("even", "odd"),
        ("prime", "prime"),
        ("square", "square"),
        ("small factor", "small factor"),
        ("too large", "size"),
        ("empty", "size"),
    ],
)
def test_bad_public_keys_are_refused_opaquely(
    paillier_keypair: KeyPair, case: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    data = _bad_keys(paillier_keypair[0])[case]
    min_bits = 2048 if case == "below the policy minimum" else 512
    with caplog.at_level(logging.INFO), pytest.raises(ProtocolError, match=r"^invalid public key$"):
        PaillierPublicKey.from_bytes(data, min_bits=min_bits)
    assert reason in caplog.text  # the reason goes to the log, never to the peer


def test_ciphertext_round_trips(owner: OwnerEncryptor) -> None:
    pk = owner.public_key
    c = owner.encrypt(-9)
    data = pk.ciphertext_to_bytes(c)
    assert len(data) == 128
    assert owner.private_key.decrypt(pk.ciphertext_from_bytes(data)) == -9


@pytest.mark.parametrize("case", ["short", "long", "zero", "n squared", "multiple of p"])
def test_malformed_ciphertexts_are_refused_opaquely(paillier_keypair: KeyPair, case: str) -> None:
    pk, sk = paillier_keypair
    size = pk.ciphertext_bytes
    data = {
        "short": b"\x01" * (size - 1),
        "long": b"\x01" * (size + 1),
        "zero": bytes(size),
        "n squared": int(pk.nsquare).to_bytes(size, "big"),
        "multiple of p": int(sk.p * 12345).to_bytes(size, "big"),
    }[case]
    with pytest.raises(ProtocolError, match=r"^invalid ciphertext$"):
        pk.ciphertext_from_bytes(data)


def test_ciphertext_of_a_larger_foreign_key_is_refused(paillier_keypair: KeyPair) -> None:
    big_pk, big_sk = generate_keypair(528, rng=random.Random(6), allow_weak=True)
    foreign = OwnerEncryptor(big_sk, rng=random.Random(7)).encrypt(1)
    with pytest.raises(ProtocolError):
        paillier_keypair[0].ciphertext_from_bytes(big_pk.ciphertext_to_bytes(foreign))


def test_private_key_must_match_public_key(
    paillier_keypair: KeyPair, foreign_keypair: KeyPair
) -> None:
    with pytest.raises(InputError):
        PaillierPrivateKey(paillier_keypair[0], foreign_keypair[1].p, foreign_keypair[1].q)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=140))
def test_parsers_raise_only_protocol_errors(paillier_keypair: KeyPair, data: bytes) -> None:
    pk = paillier_keypair[0]
    for parse in (
        lambda d: PaillierPublicKey.from_bytes(d, min_bits=512),
        pk.ciphertext_from_bytes,
    ):
        with contextlib.suppress(ProtocolError):  # the only failure a peer's bytes may cause
            parse(data)
