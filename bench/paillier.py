"""Paillier encryption rates: stock phe against keynode's paths, at one key size.

Prints one JSON line. Every rate is ciphertexts per second of wall-clock time, measured
over a fixed count of encryptions of small random integers, after one-time set-up
(key generation, fixed-base tables, worker start-up), which is reported separately.

- ``phe_enc_per_s``: ``phe.PaillierPublicKey.encrypt`` (uses gmpy2 when installed).
The phe and headline rates are measured in alternating rounds (same load for both).

- ``keynode_enc_per_s``: the value holder's path (:class:`OwnerEncryptor`, FULL
  exponent, CRT, fresh randomness per ciphertext), one process. ``ratio`` is this over
  ``phe_enc_per_s``; no precomputation is hidden in it.
- ``keynode_public_enc_per_s``: :class:`PublicEncryptor` (only ``n`` known), FULL.
- ``keynode_short_enc_per_s``: owner path with the ``SHORT_DJN`` exponent (not default).
- ``pool_online_enc_per_s``: encryptions with a randomness pool filled beforehand;
  ``pool_total_enc_per_s`` includes filling the pool (the honest total).
- ``workers_enc_per_s``: :class:`EncryptionPool` with ``--workers`` processes.

Usage: ``python bench/paillier.py --key-bits 2048 [--count 2000] [--workers 2]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from collections.abc import Callable

import phe

from keynode.crypto.paillier import (
    MIN_KEY_BITS,
    ExponentLength,
    OwnerEncryptor,
    PublicEncryptor,
    RandomnessPool,
    generate_keypair,
)
from keynode.crypto.paillier_pool import EncryptionPool

ROUNDS = 4


def _rate(count: int, work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return count / (time.perf_counter() - start)


def _timed(make: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    made = make()
    return made, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key-bits", type=int, default=2048)
    parser.add_argument("--count", type=int, default=2000, help="encryptions per keynode path")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    values = [random.randrange(2**32) for _ in range(args.count)]
    pk, sk = generate_keypair(args.key_bits, allow_weak=args.key_bits < MIN_KEY_BITS)

    phe_pk = phe.PaillierPublicKey(int(pk.n))
    owner, owner_setup = _timed(lambda: OwnerEncryptor(sk))
    assert isinstance(owner, OwnerEncryptor)
    # phe and the headline path alternate in rounds, so load from other processes on a
    # shared machine falls on both alike.
    phe_s = owner_s = 0.0
    phe_block, owner_block = max(5, args.count // 80), max(1, args.count // ROUNDS)
    for _ in range(ROUNDS):
        phe_s += _timed(lambda: [phe_pk.encrypt(v) for v in values[:phe_block]])[1]
        owner_s += _timed(lambda: [owner.encrypt(v) for v in values[:owner_block]])[1]
    phe_rate = ROUNDS * phe_block / phe_s
    owner_rate = ROUNDS * owner_block / owner_s

    short = OwnerEncryptor(sk, exponent_length=ExponentLength.SHORT_DJN)
    short_rate = _rate(args.count, lambda: [short.encrypt(v) for v in values])

    public, public_setup = _timed(lambda: PublicEncryptor(pk))
    assert isinstance(public, PublicEncryptor)
    public_count = max(50, args.count // 4)
    public_rate = _rate(public_count, lambda: [public.encrypt(v) for v in values[:public_count]])

    pool = RandomnessPool(owner)
    _, fill_s = _timed(lambda: pool.fill(args.count))
    _, online_s = _timed(lambda: [pool.encrypt(v) for v in values])

    workers, worker_start = _timed(lambda: EncryptionPool(owner, args.workers))
    assert isinstance(workers, EncryptionPool)
    with workers:
        workers.encrypt(values[: 2 * args.workers])  # tables are built on first use
        workers_rate = _rate(args.count, lambda: workers.encrypt(values))

    print(
        json.dumps(
            {
                "key_bits": args.key_bits,
                "exponent": "full",
                "exponent_bits": owner.exponent_bits,
                "phe_enc_per_s": round(phe_rate, 1),
                "keynode_enc_per_s": round(owner_rate, 1),
                "ratio": round(owner_rate / phe_rate, 2),
                "keynode_public_enc_per_s": round(public_rate, 1),
                "public_ratio": round(public_rate / phe_rate, 2),
                "keynode_short_enc_per_s": round(short_rate, 1),
                "pool_online_enc_per_s": round(args.count / online_s, 1),
                "pool_total_enc_per_s": round(args.count / (fill_s + online_s), 1),
                "workers": args.workers,
                "workers_enc_per_s": round(workers_rate, 1),
                "workers_ratio": round(workers_rate / phe_rate, 2),
                "setup_s": {
                    "owner_tables": round(owner_setup, 3),
                    "public_table": round(public_setup, 3),
                    "worker_start": round(worker_start, 3),
                },
                "count": args.count,
                "machine": {
                    "cpus": os.cpu_count(),
                    "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version(),
                    "load_avg_1m": round(os.getloadavg()[0], 2),
                },
            }
        )
    )


if __name__ == "__main__":
    main()
