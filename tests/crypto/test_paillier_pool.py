"""Worker processes produce exactly what one process produces."""

from __future__ import annotations

import random

from keynode.crypto.paillier import OwnerEncryptor, PaillierPrivateKey, PaillierPublicKey
from keynode.crypto.paillier_pool import SLICE, EncryptionPool

KeyPair = tuple[PaillierPublicKey, PaillierPrivateKey]


def test_worker_pool_equals_single_process(paillier_keypair: KeyPair) -> None:
    sk = paillier_keypair[1]
    values = [random.Random(13).randrange(-(10**9), 10**9) for _ in range(2 * SLICE + 7)]
    h = OwnerEncryptor(sk, rng=random.Random(14)).h
    single = OwnerEncryptor(sk, rng=random.Random(15), h=h)
    parallel = OwnerEncryptor(sk, rng=random.Random(15), h=h)
    with EncryptionPool(single, workers=1) as one, EncryptionPool(parallel, workers=2) as two:
        expected = one.encrypt(values)
        got = two.encrypt(values)
    assert got == expected
    assert [sk.decrypt(c) for c in got[:: SLICE // 2]] == values[:: SLICE // 2]
