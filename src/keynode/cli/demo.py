"""``keynode demo``: a synthetic customer-sharing network matched end to end on this machine."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from keynode.cli.options import add_workers_option
from keynode.client.matching import MatchingClient
from keynode.crypto.batch import GroupPool
from keynode.identity import get_profile, read_table
from keynode.matching.engine import MatchingEngine, MatchingLimits
from keynode.matching.server import start_matching_server
from keynode.protocols.psi import Variant
from keynode.synthetic import DEFAULT_MEMBERS, generate_network
from keynode.transport.tls import open_channel

LARGE_MEMBERS = 1_200_000


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "demo",
        help="run a synthetic network (key node + six partners) on this machine",
        description=(
            "Generate a retailer's loyalty base and six partners' customer files with dirty "
            "identifiers, start the key node's matching service on a free loopback port, and "
            "run every partner's encrypted overlap over gRPC. Prints a table and writes it "
            "as JSON; each overlap is checked against the generator's ground truth."
        ),
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--members",
        type=int,
        default=DEFAULT_MEMBERS,
        help="loyalty members of the key node (default: %(default)s)",
    )
    size.add_argument(
        "--large",
        action="store_const",
        dest="members",
        const=LARGE_MEMBERS,
        help=f"a large network: {LARGE_MEMBERS:,} loyalty members",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("keynode-demo"),
        help="directory for the generated files and report.json (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default: 7)")
    add_workers_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    say = _Say()
    say(f"generating a network with {args.members:,} loyalty members in {args.out}/ ...")
    network = generate_network(args.out, members=args.members, seed=args.seed)
    profile = get_profile("default")
    key_table = read_table(network.key_node.path, network.key_node.columns, profile)
    keys = [key for record in key_table.records for key in record]
    rows: list[dict[str, Any]] = []
    with GroupPool(args.workers) as pool:
        members = len(key_table.records)
        say(f"key node: hashing {len(set(keys)):,} identifiers of {members:,} members")
        limits = MatchingLimits(max_set_size=10 * len(keys) + 1000)
        engine = MatchingEngine(keys, profile.profile_id, pool, limits=limits)
        server = start_matching_server(engine, "127.0.0.1:0")
        target = f"127.0.0.1:{server.port}"
        say(f"key node: matching service on {target} (plaintext, loopback only)")
        try:
            with open_channel(target, None) as channel:
                client = MatchingClient(channel, target=target)
                bar = tqdm(network.partners, desc="partners", unit="partner", leave=False)
                for partner in bar:
                    bar.set_postfix_str(partner.name)
                    rows.append(_match_partner(client, partner, profile, pool))
        finally:
            server.stop()
    _print_table(rows)
    report = {
        "members": network.members,
        "seed": network.seed,
        "profile": profile.profile_id,
        "key_node": key_table.summary(),
        "partners": rows,
    }
    report_path = args.out / "report.json"
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    say(f"wrote {report_path}")
    return 0 if all(row["matches_ground_truth"] for row in rows) else 1


def _match_partner(
    client: MatchingClient, partner: Any, profile: Any, pool: GroupPool
) -> dict[str, Any]:
    table = read_table(partner.path, partner.columns, profile)
    started = time.perf_counter()
    result = client.match(
        partner.name, table.records, profile.profile_id, Variant.CARDINALITY, pool
    )
    seconds = time.perf_counter() - started
    return {
        "partner": partner.name,
        "rows": table.total_rows,
        "records": len(table.records),
        "rejected_rows": table.rejected_rows,
        "overlap": result.overlap,
        "expected_overlap": partner.expected_overlap,
        "matches_ground_truth": result.overlap == partner.expected_overlap,
        "seconds": round(seconds, 2),
    }


def _print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'partner':<16}{'rows':>10}{'rejected':>10}{'overlap':>10}{'share':>8}{'time':>9}  check"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        share = row["overlap"] / row["records"] if row["records"] else 0.0
        check = (
            "ok"
            if row["matches_ground_truth"]
            else f"MISMATCH (expected {row['expected_overlap']})"
        )
        print(
            f"{row['partner']:<16}{row['rows']:>10,}{row['rejected_rows']:>10,}"
            f"{row['overlap']:>10,}{share:>8.1%}{row['seconds']:>8.2f}s  {check}"
        )


class _Say:
    """Status lines on stderr, so that stdout carries only the table."""

    def __call__(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)
