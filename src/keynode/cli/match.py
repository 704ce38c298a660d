"""``keynode match``: a partner's encrypted overlap against the key node."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from keynode.cli.options import add_identity_options, add_workers_option, load_table
from keynode.client.matching import MatchingClient
from keynode.crypto.batch import GroupPool
from keynode.protocols.psi import Variant
from keynode.transport.tls import open_channel


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "match",
        help="compute your overlap with the key node (encrypted)",
        description=(
            "Normalise your customer file, blind every identifier and run ECDH-PSI against the "
            "key node. By default you learn the overlap size only; --membership also tells "
            "you which of your own rows are shared. Your identifiers never leave this machine "
            "unblinded, and the key node learns only how many records you sent."
        ),
        epilog=(
            "example: keynode match bank.csv --partner bank --email Email --phone Mobile "
            "--server 127.0.0.1:50051 --output overlap.json"
        ),
    )
    parser.add_argument("input", type=Path, help="your customers (CSV or Parquet)")
    parser.add_argument("--partner", required=True, help="your partner name in the network")
    parser.add_argument(
        "--server", default="127.0.0.1:50051", help="the key node's address (default: %(default)s)"
    )
    add_identity_options(parser)
    parser.add_argument(
        "--membership",
        action="store_true",
        help="learn which of your rows are shared (needs a level that allows it)",
    )
    parser.add_argument(
        "--output", type=Path, help="write the result as JSON here (default: standard output)"
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bars (they go to stderr)"
    )
    add_workers_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    profile, table = load_table(args.input, args)
    variant = Variant.MEMBERSHIP if args.membership else Variant.CARDINALITY
    started = time.perf_counter()
    with GroupPool(args.workers) as pool, open_channel(args.server, None) as channel:
        client = MatchingClient(channel, target=args.server)
        result = client.match(
            args.partner,
            table.records,
            profile.profile_id,
            variant,
            pool,
            show_progress=not args.no_progress and sys.stderr.isatty(),
        )
    report: dict[str, object] = {
        "partner": args.partner,
        "variant": variant.value,
        "profile": profile.profile_id,
        "input": table.summary(),
        "key_node_identifiers": result.key_node_elements,
        "overlap_records": result.overlap,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if result.shared_records is not None:
        report["shared_rows"] = [table.row_numbers[i] for i in result.shared_records]
    text = json.dumps(report, indent=2)
    if args.output:
        args.output.write_text(text + "\n")
        print(
            f"{args.partner}: {result.overlap} of {len(table.records)} records shared; "
            f"wrote {args.output}",
            file=sys.stderr,
        )
    else:
        print(text)
    return 0
