"""Paillier keys shared by the crypto tests: generated once per session.

512-bit keys keep the suite fast; they are allowed in tests only (``allow_weak=True``).
"""

from __future__ import annotations

import random

import pytest

from keynode.crypto.paillier import PaillierPrivateKey, PaillierPublicKey, generate_keypair

TEST_KEY_BITS = 512


@pytest.fixture(scope="session")
def paillier_keypair() -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    """The main test key pair."""
    return generate_keypair(TEST_KEY_BITS, rng=random.Random(1), allow_weak=True)


@pytest.fixture(scope="session")
def foreign_keypair() -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    """A second key pair of the same size, for foreign-key ciphertexts."""
    return generate_keypair(TEST_KEY_BITS, rng=random.Random(2), allow_weak=True)
