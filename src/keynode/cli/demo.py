"""``keynode demo``: a synthetic customer-sharing network run end to end on this machine."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from keynode.cli.options import add_workers_option
from keynode.demo import DemoReport, run_demo
from keynode.synthetic import DEFAULT_MEMBERS

LARGE_MEMBERS = 1_200_000


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "demo",
        help="run a synthetic network (key node + six partners) on this machine",
        description=(
            "Generate a retailer's loyalty base and six partners' customer files with dirty "
            "identifiers; start the key node (broker, matching, audit log) on a free loopback "
            "port with mTLS; enrol the partners at different sharing levels and let each run "
            "what its level allows over gRPC (and try one thing it may not); have one partner "
            "resign; verify the policy log as an auditor. Prints a table and writes it as "
            "JSON; every overlap is checked against the generator's ground truth, and the "
            "level-4 partner's per-segment aggregates (over a sample) against the plaintext "
            "computation."
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
        help="directory for the generated files, report.json and the policy log export "
        "(default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default: 7)")
    add_workers_option(parser)
    parser.set_defaults(run=run)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    report = run_demo(
        args.out, members=args.members, seed=args.seed, workers=args.workers, say=_say
    )
    _print_table(report)
    path = args.out / "report.json"
    document = {**asdict(report), "ok": report.ok}
    path.write_text(json.dumps(document, indent=2) + "\n")
    _say(f"wrote {path}")
    return 0 if report.ok else 1


def _print_table(report: DemoReport) -> None:
    header = f"{'partner':<16}{'level':>5}  {'asked for':<30}{'records':>9}{'time':>8}  outcome"
    print(header)
    print("-" * (len(header) + 30))
    for row in report.rows:
        records = f"{row.records:,}" if row.records else ""
        seconds = f"{row.seconds:.1f}s" if row.seconds else ""
        truth = "plaintext computation" if row.matches is not None else "ground truth"
        check = f"  [{row.check} vs {truth}]" if row.check else ""
        print(
            f"{row.partner:<16}{row.level:>5}  {row.action:<30}{records:>9}{seconds:>8}  "
            f"{row.outcome}{check}"
        )
    print()
    print(f"policy log: {report.log_verified or 'NOT VERIFIED'}; exported to {report.export_dir}")
