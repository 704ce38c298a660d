"""Intersection-sum end to end in one process (no transport), with the time split.

The holder has ``--size`` records (one identifier and one 32-bit value column each), the
aggregator ``--size`` identifiers, half of them shared; 2048-bit Paillier, ristretto255
ECDH, ``--workers`` processes for both. Prints one JSON line: ``size``, ``total_s`` and
the split — ``ecdh_s`` (all hashing and blinding, both sides), ``encryption_s``,
``sum_s`` (matching, ciphertext checks and homomorphic sums), ``release_s``
(threshold and re-randomisation), ``decryption_s``. ``transfer_s`` is null: no
transport here (the gRPC service is separate); ``transfer_bytes`` is what would travel.

Usage: ``python bench/intersection_sum.py --size 20000 [--workers 2]``

``--transport grpc`` runs it end to end over loopback gRPC with mTLS instead (see
:mod:`intersection_sum_grpc`): the key node in its own process, serving Aggregates
under the broker, and this process as the partner.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence

from keynode.crypto.batch import GroupPool
from keynode.crypto.paillier import OwnerEncryptor, generate_keypair
from keynode.crypto.paillier_pool import EncryptionPool
from keynode.protocols.aggregate import AggregatePolicy, Aggregator, ValueHolder

_ecdh = 0.0
_enc = 0.0


class TimedGroupPool(GroupPool):
    """A GroupPool that adds the time of every group operation to ``_ecdh``."""

    def blind(self, messages: Sequence[bytes], dst: bytes, scalar: bytes) -> bytes:
        global _ecdh
        start = time.perf_counter()
        try:
            return super().blind(messages, dst, scalar)
        finally:
            _ecdh += time.perf_counter() - start

    def mult(self, scalar: bytes, packed: bytes) -> bytes:
        global _ecdh
        start = time.perf_counter()
        try:
            return super().mult(scalar, packed)
        finally:
            _ecdh += time.perf_counter() - start


class TimedEncryptionPool(EncryptionPool):
    """An EncryptionPool that adds the time of every batch to ``_enc``."""

    def encrypt(self, values: Sequence[int]) -> list[int]:
        global _enc
        start = time.perf_counter()
        try:
            return super().encrypt(values)
        finally:
            _enc += time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--chunk", type=int, default=4096, help="records per chunk")
    parser.add_argument("--transport", choices=["none", "grpc"], default="none")
    args = parser.parse_args()
    if args.transport == "grpc":
        from intersection_sum_grpc import run_over_grpc

        print(json.dumps(run_over_grpc(args.size, args.workers)))
        return
    n = args.size
    holder_ids = [f"customer-{i}@example.org".encode() for i in range(n)]
    aggregator_ids = [f"customer-{i}@example.org".encode() for i in range(n // 2, n + n // 2)]
    values = [[(i * 2654435761) % 2**32] for i in range(n)]
    expected = sum(v[0] for v in values[n // 2 :])
    _, sk = generate_keypair(2048)

    with (
        TimedGroupPool(args.workers) as pool,
        TimedEncryptionPool(OwnerEncryptor(sk), args.workers) as encryption,
    ):
        started = time.perf_counter()
        aggregator = Aggregator(aggregator_ids, pool, AggregatePolicy(k=1))
        holder = ValueHolder(
            [[x] for x in holder_ids], values, [32], sk, pool, encryption=encryption
        )
        request = aggregator.request()
        header = holder.respond(request)
        aggregator.accept_header(header)
        moved = len(request.elements) + len(header.reblinded)
        in_aggregator = 0.0
        ecdh_before_add = 0.0
        for chunk in holder.record_chunks(args.chunk):
            moved += len(chunk.elements) + len(chunk.ciphertexts)
            ecdh_mark, t = _ecdh, time.perf_counter()
            aggregator.add_records(chunk)
            in_aggregator += time.perf_counter() - t
            ecdh_before_add += _ecdh - ecdh_mark
        t = time.perf_counter()
        response, _ = aggregator.finish()
        release = time.perf_counter() - t
        t = time.perf_counter()
        (result,) = holder.result(response)
        decryption = time.perf_counter() - t
        total = time.perf_counter() - started
    assert result.sums == (expected,) and result.count == n - n // 2, "wrong result"
    print(
        json.dumps(
            {
                "size": n,
                "overlap": result.count,
                "key_bits": 2048,
                "workers": args.workers,
                "total_s": round(total, 2),
                "ecdh_s": round(_ecdh, 2),
                "encryption_s": round(_enc, 2),
                "transfer_s": None,
                "transfer_bytes": moved,
                "sum_s": round(in_aggregator - ecdh_before_add, 2),
                "release_s": round(release, 3),
                "decryption_s": round(decryption, 4),
                "load_avg_1m": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
