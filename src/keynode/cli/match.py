"""``keynode match``: a partner's encrypted overlap against the key node."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from keynode import pki
from keynode.cli.options import (
    add_identity_options,
    add_report_options,
    add_workers_option,
    load_table,
    show_progress,
    write_report,
)
from keynode.cli.remote import add_connection_options, channel_from
from keynode.client.broker import PartnerBrokerClient
from keynode.client.matching import MatchingClient
from keynode.crypto.batch import GroupPool
from keynode.errors import InputError
from keynode.matching.service import OPERATIONS
from keynode.protocols.psi import Variant


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
    parser.add_argument(
        "--partner", help="your partner name (default: the one in your certificate)"
    )
    add_connection_options(parser, certs_required=False)
    add_identity_options(parser)
    parser.add_argument(
        "--membership",
        action="store_true",
        help="learn which of your rows are shared (needs a level that allows it)",
    )
    add_report_options(parser)
    add_workers_option(parser)
    parser.set_defaults(run=run)


def _partner_name(args: argparse.Namespace) -> str:
    if args.certs:
        identity = pki.parse_identity(pki.read_certificate(args.certs / "tls.crt"))
        if args.partner and args.partner != identity.party:
            raise InputError(f"your certificate is for {identity.party!r}, not {args.partner!r}")
        return identity.party
    if not args.partner:
        raise InputError("name yourself with --partner (or give --certs)")
    return str(args.partner)


def run(args: argparse.Namespace) -> int:
    partner = _partner_name(args)
    profile, table = load_table(args.input, args)
    variant = Variant.MEMBERSHIP if args.membership else Variant.CARDINALITY
    started = time.perf_counter()
    with GroupPool(args.workers) as pool, channel_from(args) as channel:
        grant = b""
        if args.certs:  # the broker decides whether this partner may run this variant now
            operation = OPERATIONS[variant]
            broker = PartnerBrokerClient(channel, target=args.server)
            grant = broker.grant(operation, set_size=len(table.records)).token
        client = MatchingClient(channel, target=args.server)
        result = client.match(
            partner,
            table.records,
            profile.profile_id,
            variant,
            pool,
            grant=grant,
            show_progress=show_progress(args),
        )
    report: dict[str, object] = {
        "partner": partner,
        "variant": variant.value,
        "profile": profile.profile_id,
        "input": table.summary(),
        "key_node_identifiers": result.key_node_elements,
        "overlap_records": result.overlap,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if result.shared_records is not None:
        report["shared_rows"] = [table.row_numbers[i] for i in result.shared_records]
    write_report(args, report, f"{partner}: {result.overlap} of {len(table.records)} shared")
    return 0
