"""Benchmark of the policy log: durable appends, proofs at size, and a full audit.

    python bench/auditlog.py [--entries 1000000] [--db PATH] [--threads 16]

Prints one JSON line. Method:

1. build a valid log of ``--entries`` decisions (policy load, partner enrolments and
   level changes, then grant + release pairs round-robin over 1 000 partners, one
   second apart) with ``PolicyLog.append_all`` in atomic batches of 2 000
   (``bulk_appends_per_s``);
2. ``appends_per_s``: ``--threads`` threads each calling ``PolicyLog.append`` (durable:
   it returns after the commit, WAL + fsync) for ``--durable`` entries in total, on top
   of that log, so group commit is what is measured;
3. ``proof_ms``: mean generation and verification time of inclusion proofs for 200
   random entries of the full tree, and of consistency proofs from random sizes;
4. ``verify_s``: ``verify_log`` over the whole log from the SQLite store — signatures of
   every checkpoint, the root recomputed from every entry, canonical decoding and the
   policy replay — exactly what ``keynode audit verify --db`` does;
5. ``verify_grpc_s``: the same through the AuditLog service on loopback (plaintext),
   as ``keynode audit verify --server`` does: entries streamed in batches.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keynode.auditlog import (
    Entry,
    EntryType,
    NoteSigner,
    NoteVerifier,
    PolicyLog,
    merkle,
    records,
    verify_log,
)
from keynode.auditlog_service import AuditClient, serve_audit
from keynode.policy import default_policy

PARTNERS = 1000
START_MS = 1_763_900_000_000


def _hex(n: int, size: int = 32) -> str:
    return hashlib.sha256(n.to_bytes(8, "big")).hexdigest()[: 2 * size]


def workload(total: int) -> Iterator[Entry]:
    """``total`` entries of an honest broker's history."""
    policy = default_policy()
    now = START_MS
    yield records.policy_loaded(policy, actor="operator", now_ms=now)
    count = 1
    for p in range(PARTNERS):
        partner = f"partner-{p}"
        yield records.enrolled(partner, _hex(p), actor="operator", now_ms=now)
        yield records.level_changed(partner, 1, 4, actor="operator", now_ms=now)
        count += 2
    operations = ["overlap.size", "segment.counts", "aggregate.segment", "overlap.membership"]
    n = 0
    while count < total:
        now += 1000
        partner = f"partner-{n % PARTNERS}"
        grant_id = _hex(n, 16)
        operation = operations[n % len(operations)]
        grant = {
            "grant_id": grant_id,
            "operation": operation,
            "level": 4,
            "expires_ms": now + policy.limits.grant_ttl_ms,
            "grant_hash": _hex(-n - 1 & 0xFFFFFFFF),
        }
        yield Entry(EntryType.GRANT, now, "broker", partner, grant)
        count += 1
        if count < total:
            release = {
                "grant_id": grant_id,
                "operation": operation,
                "input_count": 10_000,
                "released_count": 500,
                "params_hash": _hex(n + 7),
            }
            yield Entry(EntryType.RELEASE, now + 1, "broker", partner, release)
            count += 1
        n += 1


def build(log: PolicyLog, total: int) -> float:
    started = time.perf_counter()
    batch: list[Entry] = []
    for entry in workload(total):
        batch.append(entry)
        if len(batch) == 2000:
            log.append_all(batch)
            batch = []
    if batch:
        log.append_all(batch)
    return total / (time.perf_counter() - started)


def durable_appends(log: PolicyLog, total: int, threads: int) -> float:
    per_thread = total // threads
    params = {"operation": "overlap.size", "reason": "rate_limited"}

    def writer(t: int) -> None:
        for _ in range(per_thread):
            log.append(Entry(EntryType.REFUSAL, START_MS + 10**10, "broker", f"bench-{t}", params))

    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return per_thread * threads / (time.perf_counter() - started)


def proofs(log: PolicyLog, verifier: NoteVerifier, samples: int = 200) -> dict[str, float]:
    cp = verifier.verify(log.latest_checkpoint())
    rng = random.Random(7)
    gen = ver = cgen = cver = 0.0
    for _ in range(samples):
        index = rng.randrange(cp.size)
        body = next(log.entries(index, index + 1))
        t0 = time.perf_counter()
        proof = log.inclusion_proof(index, cp.size)
        t1 = time.perf_counter()
        merkle.verify_inclusion(merkle.leaf_hash(body), index, cp.size, proof, cp.root_hash)
        t2 = time.perf_counter()
        gen, ver = gen + t1 - t0, ver + t2 - t1
    old_roots = {}
    for note in log.store.checkpoints():
        old = verifier.verify(note)
        old_roots[old.size] = old.root_hash
    sizes = rng.sample(sorted(old_roots), min(samples, len(old_roots)))
    for size1 in sizes:
        t0 = time.perf_counter()
        proof = log.consistency_proof(size1, cp.size)
        t1 = time.perf_counter()
        merkle.verify_consistency(size1, cp.size, proof, old_roots[size1], cp.root_hash)
        t2 = time.perf_counter()
        cgen, cver = cgen + t1 - t0, cver + t2 - t1
    return {
        "proof_ms": round(1000 * max(gen, ver) / samples, 3),
        "inclusion_gen_ms": round(1000 * gen / samples, 3),
        "inclusion_verify_ms": round(1000 * ver / samples, 3),
        "consistency_gen_ms": round(1000 * cgen / len(sizes), 3),
        "consistency_verify_ms": round(1000 * cver / len(sizes), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--durable", type=int, default=20_000, help="entries for appends_per_s")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--db", type=Path, help="SQLite file (default: a temporary one)")
    args = parser.parse_args()
    signer = NoteSigner("keynode.bench/log", Ed25519PrivateKey.from_private_bytes(bytes(32)))
    verifier = NoteVerifier(signer.verifier_key)
    policy = default_policy()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "bench.db"
        log = PolicyLog.open(str(db), signer)
        bulk = build(log, args.entries)
        durable = durable_appends(log, args.durable, args.threads)
        proof = proofs(log, verifier)
        started = time.perf_counter()
        verdict = verify_log(log.store, verifier, {policy.hash: policy})
        verify_s = time.perf_counter() - started
        server = serve_audit(log.store, "127.0.0.1:0", None)
        address = f"127.0.0.1:{server.port}"
        with grpc.insecure_channel(address) as channel:
            started = time.perf_counter()
            verify_log(AuditClient(channel, address), verifier, {policy.hash: policy})
            verify_grpc_s = time.perf_counter() - started
        server.stop(grace=None)
        log.close()
    print(
        json.dumps(
            {
                "entries": verdict.checkpoint.size,
                "appends_per_s": round(durable),
                "append_threads": args.threads,
                "bulk_appends_per_s": round(bulk),
                **proof,
                "verify_s": round(verify_s, 2),
                "verify_grpc_s": round(verify_grpc_s, 2),
                "checkpoints": verdict.checkpoints_checked,
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
