"""``keynode serve``: run the key node's Matching service over its customer file."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from keynode.cli.options import add_identity_options, add_workers_option, load_table
from keynode.crypto.batch import GroupPool
from keynode.matching.engine import MatchingEngine, MatchingLimits
from keynode.matching.server import start_matching_server


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "serve",
        help="run the key node's matching service",
        description=(
            "Load the key node's customer file, normalise its identifiers and serve encrypted "
            "overlaps (ECDH-PSI) to partners. Identifiers never leave this process unblinded."
        ),
        epilog="example: keynode serve loyalty.csv --email email --phone phone --region DE",
    )
    parser.add_argument("customers", type=Path, help="the key node's customers (CSV or Parquet)")
    add_identity_options(parser)
    parser.add_argument(
        "--listen",
        default="127.0.0.1:50051",
        help="HOST:PORT to listen on; plaintext is loopback-only (default: %(default)s)",
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


def run(args: argparse.Namespace) -> int:
    profile, table = load_table(args.customers, args)
    summary = table.summary()
    keys = [key for record in table.records for key in record]
    print(
        f"loaded {summary['accepted_rows']} of {summary['total_rows']} customers "
        f"({len(set(keys))} distinct identifiers, {summary['rejected_rows']} rows rejected: "
        f"{summary['rejected_by_reason'] or 'none'}); profile {profile.profile_id}",
        file=sys.stderr,
    )
    limits = MatchingLimits(max_set_size=args.max_set_size, max_sessions=args.max_sessions)
    with GroupPool(args.workers) as pool:
        engine = MatchingEngine(keys, profile.profile_id, pool, limits=limits)
        for partner in args.precompute:
            print(f"precomputing the blinded set for {partner} ...", file=sys.stderr)
            engine.precompute(partner)
        running = start_matching_server(engine, args.listen)
        host = args.listen.rpartition(":")[0]
        print(
            f"keynode matching service on {host}:{running.port} (Ctrl-C to stop)", file=sys.stderr
        )
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        print("stopping ...", file=sys.stderr)
        running.stop()
    return 0
