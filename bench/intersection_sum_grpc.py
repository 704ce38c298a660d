"""Intersection-sum end to end over loopback gRPC and mTLS (``--transport grpc``).

Method: a fresh network CA and certificates; the key node (broker, policy log and the
Aggregates service on one mTLS port, default policy, so ``k = 50``) runs in its own
process with ``size`` identifiers in one segment (a plain intersection-sum: no segment
labels); this process is the partner (enrolled at level 4) with ``size`` one-identifier
records and one 32-bit value column, half of them shared; a fresh 2048-bit Paillier key;
``workers`` processes for the group operations on each side and for encryption.
``total_s`` runs from the grant request to the decrypted result: grant, open, the key
node's blinding and download, re-blinding and upload, the records (blinded, encrypted,
streamed and summed, pipelined), the logged release, decryption. Setup (data, keys,
certificates, worker start-up) is not timed.

The split (seconds): ``ecdh_s`` every hash-to-group and scalar multiplication, both
sides; ``encryption_s`` the partner's Paillier encryption; ``sum_s`` the key node's
matching and homomorphic sums (``add_records`` minus its ECDH); ``release_s`` threshold
and re-randomisation; ``decryption_s``. Records are encrypted, sent and summed at the
same time, so phases overlap on the two cores; ``transfer_s`` is the rest of the wall
time (``total_s`` minus the phases: serialisation, the wire, waiting), a lower bound
that can reach 0 when overlap hides the transfer entirely. ``calls`` gives the wall time
of each RPC as the partner saw it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import tempfile
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench_support import NETWORK, PROFILE, timed

from keynode import pki


def _identifier(i: int) -> bytes:
    return f"email:customer{i}@example.org".encode()


def _timed_group_pool(times: dict[str, float]) -> type:
    from keynode.crypto.batch import GroupPool

    class TimedGroupPool(GroupPool):
        def blind(self, messages: Sequence[bytes], dst: bytes, scalar: bytes) -> bytes:
            return timed(times, "ecdh_s", super().blind)(messages, dst, scalar)  # type: ignore[no-any-return]

        def mult(self, scalar: bytes, packed: bytes) -> bytes:
            return timed(times, "ecdh_s", super().mult)(scalar, packed)  # type: ignore[no-any-return]

    return TimedGroupPool


def key_node(root: Path, size: int, workers: int, conn: Connection) -> None:
    """The key node's process: serve until told to stop, then report its timings."""
    from keynode.aggregates.engine import AggregateEngine, SegmentedIdentifiers
    from keynode.matching.engine import MatchingEngine
    from keynode.node import KeyNode, StateDir
    from keynode.policy import default_policy_bytes
    from keynode.protocols import aggregate

    times: dict[str, float] = {}
    add_records = aggregate.Aggregator.add_records

    def timed_add(self: aggregate.Aggregator, chunk: aggregate.RecordChunk) -> None:
        ecdh, start = times.get("ecdh_s", 0.0), time.perf_counter()
        add_records(self, chunk)
        spent = time.perf_counter() - start - (times.get("ecdh_s", 0.0) - ecdh)
        times["sum_s"] = times.get("sum_s", 0.0) + spent

    aggregate.Aggregator.add_records = timed_add  # type: ignore[method-assign]
    aggregate.Aggregator.finish = timed(times, "release_s", aggregate.Aggregator.finish)  # type: ignore[method-assign]
    keys = [_identifier(i) for i in range(size // 2, size // 2 + size)]
    with _timed_group_pool(times)(workers) as pool:
        identifiers = SegmentedIdentifiers(tuple(keys), ("all",) * size)
        engine = AggregateEngine(identifiers, PROFILE, pool)
        node = KeyNode(
            MatchingEngine(keys[:1], PROFILE, pool),
            StateDir(root / "state"),
            network=NETWORK,
            aggregates=engine,
        )
        node.broker.load_policy(default_policy_bytes(), actor="bench")
        node.broker.enrol("bank", pki.read_certificate(root / "bank" / "tls.crt"), actor="bench")
        node.broker.set_level("bank", 4, actor="bench")
        conn.send(node.start("127.0.0.1:0", root / "key-node"))
        conn.recv()  # the partner is done
        node.stop(grace_s=None)
    conn.send({f"key_node_{k}" if k == "ecdh_s" else k: v for k, v in times.items()})


def partner(target: str, certs: Path, size: int, workers: int) -> dict[str, Any]:
    """The partner's run; returns the figures."""
    from keynode.client.aggregates import AggregatesClient, broker_grants
    from keynode.crypto.paillier import OwnerEncryptor, generate_keypair
    from keynode.crypto.paillier_pool import EncryptionPool
    from keynode.protocols import aggregate
    from keynode.transport.tls import open_channel

    records = [[_identifier(i)] for i in range(size)]
    values = [[(i * 2654435761) % 2**32] for i in range(size)]
    expected = sum(v[0] for v in values[size // 2 :])
    _, private_key = generate_keypair(2048)
    times: dict[str, float] = {}

    class TimedEncryptionPool(EncryptionPool):
        def encrypt(self, batch: Sequence[int]) -> list[int]:
            return timed(times, "encryption_s", super().encrypt)(batch)  # type: ignore[no-any-return]

    aggregate.ValueHolder.result = timed(times, "decryption_s", aggregate.ValueHolder.result)  # type: ignore[method-assign]
    channel = open_channel(target, certs, server_name="localhost")
    client = AggregatesClient(channel, target=target)
    stub, calls = client._stub, {}  # private: timing each call as the partner sees it
    for name in ("OpenSession", "UploadHeader", "UploadRecords", "Finish"):
        setattr(stub, name, timed(calls, name, getattr(stub, name)))
    download = stub.DownloadRequest
    stub.DownloadRequest = timed(
        calls, "DownloadRequest", lambda r, **kw: iter(list(download(r, **kw)))
    )
    with (
        _timed_group_pool(times)(workers) as pool,
        TimedEncryptionPool(OwnerEncryptor(private_key), workers) as encryption,
    ):
        start = time.perf_counter()
        outcome = client.aggregate(
            "bank", records, values, [32], private_key, PROFILE, pool,
            grants=broker_grants(channel, size, target), encryption=encryption,
        )  # fmt: skip
        total = time.perf_counter() - start
    channel.close()
    ((result,),) = [outcome.segments]
    assert result.sums == (expected,) and result.count == size - size // 2, "wrong result"
    times["partner_ecdh_s"] = times.pop("ecdh_s")
    return {"overlap": result.count, "total_s": total, "split": times, "calls": calls}


def run_over_grpc(size: int, workers: int) -> dict[str, Any]:
    """Start the key node, run the partner, and return the JSON-ready figures."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pki.init_ca(NETWORK, root / "ca")
        pki.issue(root / "ca", pki.KEY_NODE, "retailer", root / "key-node", dns_names=["localhost"])
        pki.issue(root / "ca", pki.PARTNER, "bank", root / "bank")
        context = mp.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(target=key_node, args=(root, size, workers, theirs))
        process.start()
        try:
            port = ours.recv()
            figures = partner(f"127.0.0.1:{port}", root / "bank", size, workers)
            ours.send("done")
            figures["split"].update(ours.recv())
        finally:
            process.join(60)
    split = figures["split"]
    split["ecdh_s"] = split.pop("partner_ecdh_s") + split.pop("key_node_ecdh_s")
    phases = ("ecdh_s", "encryption_s", "sum_s", "release_s", "decryption_s")
    split["transfer_s"] = max(0.0, figures["total_s"] - sum(split[p] for p in phases))
    return {
        "size": size,
        "overlap": figures["overlap"],
        "key_bits": 2048,
        "workers": workers,
        "transport": "grpc+mtls loopback",
        "total_s": round(figures["total_s"], 2),
        **{k: round(split[k], 3) for k in (*phases, "transfer_s")},
        "transfer_bytes": size * 32 * 2 + size * (32 + 512),
        "calls": {k: round(v, 2) for k, v in figures["calls"].items()},
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
