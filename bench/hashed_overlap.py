"""Benchmark of the hashed overlap, end to end over loopback mTLS.

    python bench/hashed_overlap.py [--size 1000000] [--membership]

Prints one JSON line. Method: a fresh network CA and certificates; the key node (broker,
HashedOverlap service and its hasher, on one mTLS port) runs in its own process with
``--size`` distinct e-mail identifiers; this process is the partner, with ``--size``
one-key records of which half are the key node's. The partner is enrolled at level 2
(3 with ``--membership``). ``total_s`` runs from the grant request to the result in
the partner's hands: grant, open, key agreement, digests and upload on both sides, the
broker's match, the logged release and the deletion of the uploads. Setup (data, certs,
start-up) is not timed.

``split`` (seconds; the phases overlap, so they do not add up to the total):
``partner_digest_s`` time in ``digest_records``; ``partner_upload_s`` the upload call
minus the digesting streamed inside it; ``key_node_digest_s`` time in ``digest_set``;
``key_node_upload_s`` the hasher's upload call; ``wait_s`` the partner's polling after
its own upload; ``match_s`` the broker's comparison (``HashedMatch.result``).

The Matching (ECDH) engine the key node also carries is given one identifier, so that
its start-up does not hash a million points it would never use here.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench_support import NETWORK, PROFILE, timed

from keynode import pki


def _identifier(i: int) -> bytes:
    return f"email:customer{i}@example.com".encode()


def key_node(root: Path, size: int, level: int, conn: Connection) -> None:
    """The key node's process: serve until told to stop, then report its timings."""
    from keynode.broker.hashed import HashedMatch
    from keynode.client import hashed as hashed_client
    from keynode.crypto.batch import GroupPool
    from keynode.matching.engine import MatchingEngine
    from keynode.node import KeyNode, StateDir
    from keynode.policy import default_policy_bytes

    times: dict[str, float] = {}
    hashed_client.digest_set = timed(times, "key_node_digest_s", hashed_client.digest_set)  # type: ignore[assignment]
    serve = hashed_client.KeyNodeHasher.serve
    hashed_client.KeyNodeHasher.serve = timed(times, "key_node_serve_s", serve)  # type: ignore[method-assign]
    HashedMatch.result = timed(times, "match_s", HashedMatch.result)  # type: ignore[method-assign]
    keys = [_identifier(i) for i in range(size)]
    with GroupPool(1) as pool:
        engine = MatchingEngine(keys[:1], PROFILE, pool)
        node = KeyNode(engine, StateDir(root / "state"), network=NETWORK, hashed_keys=keys)
        node.broker.load_policy(default_policy_bytes(), actor="bench")
        node.broker.enrol("bank", pki.read_certificate(root / "bank" / "tls.crt"), actor="bench")
        node.broker.set_level("bank", level, actor="bench")
        conn.send(node.start("127.0.0.1:0", root / "key-node"))
        conn.recv()  # the partner is done
        node.stop(grace_s=None)
    times["key_node_upload_s"] = times.pop("key_node_serve_s") - times["key_node_digest_s"]
    conn.send(times)


def partner(target: str, certs: Path, size: int, membership: bool) -> dict[str, Any]:
    """The partner's run; returns the figures."""
    from keynode.client import hashed as hashed_client
    from keynode.client.broker import PartnerBrokerClient
    from keynode.transport.tls import open_channel

    records = [[_identifier(i)] for i in range(size // 2, size // 2 + size)]
    times: dict[str, float] = {}
    hashed_client.digest_records = timed(times, "partner_digest_s", hashed_client.digest_records)  # type: ignore[assignment]
    channel = open_channel(target, certs, server_name="localhost")
    client = hashed_client.HashedOverlapClient(channel, target=target)
    stub = client._stub
    stub.UploadHashes = timed(times, "partner_upload_s", stub.UploadHashes)
    stub.GetHashedMatchResult = timed(times, "wait_s", stub.GetHashedMatchResult)
    operation = "overlap.membership.hashed" if membership else "overlap.size.hashed"
    start = time.perf_counter()
    grant = PartnerBrokerClient(channel, target=target).grant(operation).token
    result = client.match(records, PROFILE, grant, membership=membership)
    total = time.perf_counter() - start
    times["partner_upload_s"] -= times["partner_digest_s"]
    channel.close()
    assert result.overlap == size - size // 2, result
    return {"overlap": result.overlap, "total_s": round(total, 3), "split": times}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--membership", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pki.init_ca(NETWORK, root / "ca")
        pki.issue(root / "ca", pki.KEY_NODE, "retailer", root / "key-node", dns_names=["localhost"])
        pki.issue(root / "ca", pki.PARTNER, "bank", root / "bank")
        ours, theirs = mp.get_context("spawn").Pipe()
        level = 3 if args.membership else 2
        process = mp.get_context("spawn").Process(
            target=key_node, args=(root, args.size, level, theirs)
        )
        process.start()
        try:
            port = ours.recv()
            figures = partner(f"127.0.0.1:{port}", root / "bank", args.size, args.membership)
            ours.send("done")
            figures["split"].update(ours.recv())
        finally:
            process.join(30)
    split = {k: round(v, 3) for k, v in sorted(figures.pop("split").items())}
    line = {"size": args.size, "membership": args.membership, **figures, "split": split}
    print(json.dumps({**line, "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
