"""``keynode serve``: run the key node over its customer file.

With ``--certs`` (the key node's certificate) it runs the whole key node on one mTLS
port: the broker (levels, grants, leases, resignation), the Matching service under the
broker's grants, and the read-only AuditLog. Without it, only the Matching service runs,
plaintext, on a loopback address and without policy: for trying keynode out.
"""

from __future__ import annotations

import argparse
import hashlib
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from keynode import pki
from keynode.aggregates.engine import AggregateEngine, SegmentedIdentifiers
from keynode.aggregates.values import KeyNodeValues
from keynode.broker.audience import SegmentDirectory
from keynode.cli.options import add_identity_options, add_workers_option, load_table
from keynode.crypto.batch import GroupPool
from keynode.errors import InputError
from keynode.identity import NormalisedTable
from keynode.matching.engine import MatchingEngine, MatchingLimits
from keynode.matching.server import start_matching_server
from keynode.node import KeyNode, StateDir


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "serve",
        help="run the key node (broker, matching, audit log)",
        description=(
            "Load the key node's customer file, normalise its identifiers and serve encrypted "
            "overlaps (ECDH-PSI) to partners. With --certs the broker enforces the sharing "
            "levels over mTLS and every decision goes to the policy log. Identifiers never "
            "leave this process unblinded."
        ),
        epilog=(
            "example: keynode serve loyalty.csv --email email --phone phone "
            "--certs pki/key-node --state state/ --listen 0.0.0.0:7443 "
            "--segment-column segment --member-column customer_id"
        ),
    )
    parser.add_argument("customers", type=Path, help="the key node's customers (CSV or Parquet)")
    add_identity_options(parser)
    parser.add_argument(
        "--listen",
        default="127.0.0.1:50051",
        help="HOST:PORT to listen on; plaintext is loopback-only (default: %(default)s)",
    )
    node = parser.add_argument_group("key node with broker (mTLS)")
    node.add_argument("--certs", type=Path, metavar="DIR", help="the key node's certificate dir")
    node.add_argument(
        "--state", type=Path, default=Path("keynode-state"), help="state directory (keys, database)"
    )
    node.add_argument("--database", metavar="URL", help="postgresql://... instead of SQLite")
    node.add_argument("--policy", type=Path, help="load this policy file at start (logged)")
    node.add_argument("--crl", type=Path, help="the network CRL (crl.pem) to honour")
    node.add_argument(
        "--segment-column",
        help="column with each member's segment (audiences and per-segment aggregates)",
    )
    node.add_argument("--member-column", help="column with the member reference for campaigns")
    node.add_argument(
        "--value-column",
        help="column of non-negative integers below 2^32 that partners may have summed over "
        "their overlap (aggregate.keynode_values; needs --segment-column)",
    )
    add_workers_option(parser)
    limits = MatchingLimits()
    parser.add_argument(
        "--max-set-size",
        type=int,
        default=limits.max_set_size,
        help="most identifiers a partner may upload per session (default: %(default)s)",
    )
    parser.add_argument(
        "--max-sessions",
        type=int,
        default=limits.max_sessions,
        help="most sessions open at once (default: %(default)s)",
    )
    parser.add_argument(
        "--precompute",
        action="append",
        default=[],
        metavar="PARTNER",
        help="blind the key node's set for this partner before serving (repeatable)",
    )
    parser.set_defaults(run=run)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _directory(args: argparse.Namespace, table: NormalisedTable) -> SegmentDirectory | None:
    if not args.segment_column:
        return None
    refs = table.extra[args.member_column] if args.member_column else table.row_numbers
    return SegmentDirectory.from_columns(table.extra[args.segment_column], refs)


def _aggregates(
    args: argparse.Namespace, table: NormalisedTable, profile_id: str, pool: GroupPool
) -> AggregateEngine | None:
    """Partners' values per segment (keynode.v1.Aggregates) need the segment column; the
    key node's values over a partner's overlap also need the value column."""
    if not args.segment_column:
        if args.value_column:
            raise InputError("--value-column needs --segment-column (the Aggregates service)")
        return None
    identifiers = SegmentedIdentifiers.from_records(table.records, table.extra[args.segment_column])
    values = None
    if args.value_column:
        values = KeyNodeValues.from_records(table.records, table.extra[args.value_column])
    return AggregateEngine(identifiers, profile_id, pool, values=values)


def run(args: argparse.Namespace) -> int:
    extra = tuple(c for c in (args.segment_column, args.member_column, args.value_column) if c)
    profile, table = load_table(args.customers, args, extra)
    summary = table.summary()
    keys = [key for record in table.records for key in record]
    _say(
        f"loaded {summary['accepted_rows']} of {summary['total_rows']} customers "
        f"({len(set(keys))} distinct identifiers, {summary['rejected_rows']} rows rejected: "
        f"{summary['rejected_by_reason'] or 'none'}); profile {profile.profile_id}"
    )
    limits = MatchingLimits(max_set_size=args.max_set_size, max_sessions=args.max_sessions)
    host = args.listen.rpartition(":")[0]
    with GroupPool(args.workers) as pool:
        _say(f"hashing {len(set(keys)):,} identifiers to the group (once, at load) ...")
        engine = MatchingEngine(keys, profile.profile_id, pool, limits=limits)
        for partner in args.precompute:
            _say(f"precomputing the blinded set for {partner} ...")
            engine.precompute(partner)
        if args.certs:
            aggregates = _aggregates(args, table, profile.profile_id, pool)
            stop = _serve_node(args, engine, keys, _directory(args, table), host, aggregates)
        else:
            running = start_matching_server(engine, args.listen)
            _say(f"keynode matching service on {host}:{running.port}, plaintext, no policy")
            stop = running.stop
        _say("serving (Ctrl-C to stop)")
        _wait_for_signal()
        _say("stopping ...")
        stop()
    return 0


def _serve_node(
    args: argparse.Namespace,
    engine: MatchingEngine,
    keys: list[bytes],
    directory: SegmentDirectory | None,
    host: str,
    aggregates: AggregateEngine | None = None,
) -> Callable[[], None]:
    cert_dir: Path = args.certs
    identity = pki.parse_identity(pki.read_certificate(cert_dir / "tls.crt"))
    if identity.role != pki.KEY_NODE:
        raise InputError(f"{cert_dir}/tls.crt is a {identity.role} certificate, not a key node's")
    crl = None
    if args.crl:
        crl = pki.CrlFile(args.crl, pki.read_certificate(cert_dir / "ca.crt"))
    node = KeyNode(
        engine,
        StateDir(args.state),
        network=identity.network,
        database=args.database,
        directory=directory,
        crl=crl,
        hashed_keys=keys,
        aggregates=aggregates,
    )
    if args.policy:
        body = pki.read_file(args.policy)
        current = node.broker.policy
        if current is None or current.hash != hashlib.sha256(body).hexdigest():
            policy = node.broker.load_policy(body, actor=identity.party)
            _say(f"loaded policy {policy.version} ({policy.hash[:16]})")
    elif node.broker.policy is None:
        _say("no policy loaded yet: every request is denied until `keynode policy load`")
    port = node.start(args.listen, cert_dir)
    _say(
        f"key node {identity.party!r} of network {identity.network!r} on {host}:{port} (mTLS); "
        f"auditors verify with {args.state / 'log-verifier.pub'}"
    )
    return node.stop


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
