"""Paillier encryption compatible with ``phe``: homomorphic operations and the public API.

This is the module the protocols import. It is low-level (raw ciphertexts are integers
in ``[1, n^2)``); :mod:`keynode.protocols.aggregate` is the recipe built on it.

- keys, encoding, validation and wire format: :mod:`keynode.crypto.paillier_keys`
- fast encryption (DJN randomness, fixed-base tables, CRT for the owner, randomness
  pools): :mod:`keynode.crypto.paillier_fast`
- worker processes: :mod:`keynode.crypto.paillier_pool`
- several columns in one plaintext: :mod:`keynode.crypto.paillier_packing`

Operations here take ciphertexts already validated (by
:meth:`PaillierPublicKey.ciphertext_from_bytes`) or made locally.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from keynode.crypto import paillier_mp as mp
from keynode.crypto.paillier_fast import (
    Encryptor,
    ExponentLength,
    FixedBaseTable,
    OwnerEncryptor,
    PublicEncryptor,
    RandomnessPool,
)
from keynode.crypto.paillier_keys import (
    DEFAULT_KEY_BITS,
    MAX_KEY_BITS,
    MIN_KEY_BITS,
    PaillierPrivateKey,
    PaillierPublicKey,
    default_rng,
    generate_keypair,
)

__all__ = [
    "DEFAULT_KEY_BITS",
    "MAX_KEY_BITS",
    "MIN_KEY_BITS",
    "Encryptor",
    "ExponentLength",
    "FixedBaseTable",
    "OwnerEncryptor",
    "PaillierPrivateKey",
    "PaillierPublicKey",
    "PublicEncryptor",
    "RandomnessPool",
    "add",
    "add_plain",
    "generate_keypair",
    "mul_plain",
    "rerandomize",
    "sum_ciphertexts",
]


def add(public_key: PaillierPublicKey, a: int, b: int) -> int:
    """Encryption of the sum of the plaintexts of ``a`` and ``b``."""
    return a * b % public_key.nsquare


def add_plain(public_key: PaillierPublicKey, c: int, value: int) -> int:
    """Encryption of ``plaintext(c) + value`` (``g^value = 1 + value*n``); not re-randomised."""
    return c * (1 + public_key.encode(value) * public_key.n) % public_key.nsquare


def mul_plain(public_key: PaillierPublicKey, c: int, scalar: int) -> int:
    """Encryption of ``plaintext(c) * scalar``; a negative scalar acts modulo ``n``."""
    return mp.powmod(c, public_key.encode(scalar), public_key.nsquare)


def sum_ciphertexts(public_key: PaillierPublicKey, ciphertexts: Iterable[int]) -> int:
    """Encryption of the sum of all plaintexts (an empty sum is the trivial encryption 1)."""
    nsquare = public_key.nsquare
    acc = mp.mpz(1)
    for c in ciphertexts:
        acc = acc * c % nsquare
    return acc


def rerandomize(public_key: PaillierPublicKey, c: int, *, rng: random.Random | None = None) -> int:
    """``c * r^n mod n^2`` for a fresh uniform unit ``r``: same plaintext, fresh ciphertext.

    The party that re-randomises before returning a result is protecting itself against
    the *key owner*, who knows the factors of ``n`` and could test membership in a
    subgroup. So this uses the classic ``r^n`` (uniform over all n-th residues, hiding
    how ``c`` was computed perfectly, whatever ``n`` is) rather than a DJN ``h_s^a``,
    whose hiding holds only against parties who cannot factor ``n``. It is applied once
    per released result, so its cost does not matter.
    """
    rng = rng or default_rng()
    n = public_key.n
    while True:
        r = mp.mpz(rng.randrange(1, int(n)))
        if mp.gcd(r, n) == 1:
            return c * mp.powmod(r, n, public_key.nsquare) % public_key.nsquare
