"""``keynode aggregate``: a partner's value columns summed per key-node segment, or
(``--key-node-values``) the key node's value column summed over the partner's overlap."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from keynode import pki
from keynode.aggregates.service import VALUES_OPERATION
from keynode.cli.options import (
    add_identity_options,
    add_report_options,
    add_workers_option,
    load_table,
    show_progress,
    write_report,
)
from keynode.cli.remote import add_connection_options, channel_from
from keynode.client.aggregates import AggregateOutcome, AggregatesClient, broker_grants
from keynode.crypto.batch import GroupPool
from keynode.crypto.paillier import DEFAULT_KEY_BITS, OwnerEncryptor, generate_keypair
from keynode.crypto.paillier_pool import EncryptionPool
from keynode.errors import InputError
from keynode.identity import NormalisedTable

#: Default width of a value column: amounts up to 4 294 967 295 (e.g. cents).
DEFAULT_BITS = 32


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "aggregate",
        help="sum your value columns per key-node segment (Paillier, level 4)",
        description=(
            "Encrypt your value columns under a fresh Paillier key that never leaves this "
            "machine, and let the key node sum them, per agreed segment, over the customers "
            "you share. You learn per segment the column sums and the number of shared "
            "customers, or that the segment was suppressed (fewer than the network's minimum "
            "cohort); not which customer is in which segment. The key node learns how many "
            "records you sent and how many are shared per segment, never your values. "
            "With --key-node-values the roles swap: the key node encrypts its own value "
            "column, this machine sums it over the customers you share (no segments) and the "
            "key node decrypts; both sides learn the sum and the shared count, neither which "
            "customers are shared."
        ),
        epilog=(
            "example: keynode aggregate bank.csv --email customer_email --phone mobile_phone "
            "--value balance_eur --certs pki/bank --server keynode.example:7443"
        ),
    )
    parser.add_argument("input", type=Path, help="your customers (CSV or Parquet)")
    add_connection_options(parser, certs_required=True)
    add_identity_options(parser)
    values = parser.add_argument_group("values")
    values.add_argument(
        "--value",
        action="append",
        metavar="COLUMN",
        help="a column of non-negative integers to sum (repeatable; needed unless "
        "--key-node-values)",
    )
    values.add_argument(
        "--key-node-values",
        action="store_true",
        help="sum the key node's value column over the customers you share instead "
        "(aggregate.keynode_values, level 4)",
    )
    values.add_argument(
        "--bits",
        action="append",
        type=int,
        metavar="B",
        help="width of the value columns: every value is in [0, 2^B); one for all columns, "
        f"or one per --value in order (default: {DEFAULT_BITS})",
    )
    values.add_argument(
        "--epsilon",
        type=Fraction,
        help="add differentially private noise at this epsilon, e.g. 1/2 "
        "(needs a level that allows dp.aggregate; spends your budget)",
    )
    values.add_argument(
        "--key-bits",
        type=int,
        default=DEFAULT_KEY_BITS,
        help="Paillier modulus size of the fresh key (default: %(default)s)",
    )
    add_report_options(parser)
    add_workers_option(parser)
    parser.set_defaults(run=run)


def column_bits(columns: Sequence[str], bits: Sequence[int] | None) -> tuple[int, ...]:
    """One width per column from ``--bits`` (none, one for all, or one each), checked."""
    given = list(bits or [DEFAULT_BITS])
    if len(given) == 1:
        given *= len(columns)
    if len(given) != len(columns):
        raise InputError(
            f"give one --bits for all value columns or one per --value ({len(columns)})"
        )
    if not all(1 <= b <= 64 for b in given):
        raise InputError("--bits must be between 1 and 64")
    return tuple(given)


def value_rows(
    table: NormalisedTable, columns: Sequence[str], bits: Sequence[int]
) -> list[list[int]]:
    """The value columns of every accepted row as integers, each checked against its width.

    A value that is missing, not an integer or outside ``[0, 2^B)`` is an error naming
    the row (1-based data row, as in the table summary) and the column.
    """
    rows: list[list[int]] = [[] for _ in table.records]
    for column, width in zip(columns, bits, strict=True):
        for i, cell in enumerate(table.extra[column]):
            value = _integer(cell)
            if value is None or not 0 <= value < (1 << width):
                raise InputError(
                    f"row {table.row_numbers[i]}, column {column!r}: {cell!r} is not an integer "
                    f"in [0, 2^{width}); widen it with --bits or fix the value"
                )
            rows[i].append(value)
    return rows


def _integer(cell: object) -> int | None:
    if isinstance(cell, bool):
        return None
    if isinstance(cell, int):
        return cell
    if isinstance(cell, float):  # a CSV column with one decimal is read as floats
        return int(cell) if cell.is_integer() else None
    try:
        return int(str(cell).strip())
    except ValueError:
        return None


def run(args: argparse.Namespace) -> int:
    if args.key_node_values:
        if args.value or args.bits or args.epsilon:
            raise InputError("--key-node-values takes no --value, --bits or --epsilon")
        return run_key_node_values(args)
    if not args.value:
        raise InputError("give at least one --value COLUMN, or --key-node-values")
    identity = pki.parse_identity(pki.read_certificate(args.certs / "tls.crt"))
    partner = identity.party
    columns = list(dict.fromkeys(args.value))
    bits = column_bits(columns, args.bits)
    profile, table = load_table(args.input, args, tuple(columns))
    values = value_rows(table, columns, bits)
    show = show_progress(args)
    started = time.perf_counter()
    _, private_key = generate_keypair(args.key_bits)
    with (
        GroupPool(args.workers) as pool,
        EncryptionPool(OwnerEncryptor(private_key), args.workers) as encryption,
        channel_from(args) as channel,
    ):
        outcome = AggregatesClient(channel, target=args.server).aggregate(
            partner,
            table.records,
            values,
            bits,
            private_key,
            profile.profile_id,
            pool,
            grants=broker_grants(channel, len(table.records), args.server),
            epsilon=args.epsilon,
            encryption=encryption,
            show_progress=show,
        )
    report = result_document(outcome, columns, bits)
    report.update(
        partner=partner,
        profile=profile.profile_id,
        input=table.summary(),
        key_bits=args.key_bits,
        epsilon=str(args.epsilon) if args.epsilon else None,
        seconds=round(time.perf_counter() - started, 3),
    )
    released = sum(not s.suppressed for s in outcome.segments)
    summary = f"{partner}: {released} of {len(outcome.segments)} segments released"
    write_report(args, report, summary)
    return 0


def run_key_node_values(args: argparse.Namespace) -> int:
    """The key node's values summed over the customers this partner shares with it."""
    partner = pki.parse_identity(pki.read_certificate(args.certs / "tls.crt")).party
    profile, table = load_table(args.input, args, ())
    identifiers = list(dict.fromkeys(key for record in table.records for key in record))
    started = time.perf_counter()
    with GroupPool(args.workers) as pool, channel_from(args) as channel:
        outcome = AggregatesClient(channel, target=args.server).key_node_values(
            partner,
            identifiers,
            profile.profile_id,
            pool,
            grants=broker_grants(
                channel, len(identifiers), args.server, operation=VALUES_OPERATION
            ),
            show_progress=show_progress(args),
        )
    report = {
        "operation": VALUES_OPERATION,
        "partner": partner,
        "profile": profile.profile_id,
        "input": table.summary(),
        "min_cohort": outcome.k,
        "key_node_records": outcome.key_node_records,
        "count": outcome.count,
        "sums": list(outcome.sums),
        "seconds": round(time.perf_counter() - started, 3),
    }
    summary = f"{partner}: key-node values over {outcome.count} shared customers: {outcome.sums}"
    write_report(args, report, summary)
    return 0


def result_document(
    outcome: AggregateOutcome, columns: Sequence[str], bits: Sequence[int]
) -> dict[str, Any]:
    """The JSON report: every segment, released (sums by column, count) or suppressed."""
    segments = []
    for result in outcome.segments:
        entry: dict[str, Any] = {"segment": result.segment, "suppressed": result.suppressed}
        if result.sums is not None:
            entry["count"] = result.count
            entry["sums"] = dict(zip(columns, result.sums, strict=True))
        segments.append(entry)
    return {
        "columns": [{"name": c, "bits": b} for c, b in zip(columns, bits, strict=True)],
        "min_cohort": outcome.k,
        "key_node_identifiers": outcome.key_node_elements,
        "segments": segments,
    }
