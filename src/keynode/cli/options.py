"""Command-line options shared by several commands, and turning them into objects."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from keynode.errors import InputError
from keynode.identity import (
    NormalisedTable,
    Profile,
    add_profile_arguments,
    profile_from_args,
    read_table,
)

#: Identifier kinds a user can map to columns, with their flags.
ID_FLAGS = {"email": "--email", "phone": "--phone", "customer_id": "--customer-id"}


def add_identity_options(parser: argparse.ArgumentParser) -> None:
    """Which columns hold identifiers, and how to normalise them."""
    group = parser.add_argument_group(
        "identifier columns",
        "Map identifier kinds to columns of the input file (at least one). A record "
        "matches when any of its identifiers matches; it counts once.",
    )
    group.add_argument("--email", metavar="COLUMN", help="column holding e-mail addresses")
    group.add_argument("--phone", metavar="COLUMN", help="column holding phone numbers")
    group.add_argument(
        "--customer-id", metavar="COLUMN", help="column holding loyalty or customer ids"
    )
    add_profile_arguments(parser)


def add_workers_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes for the group operations (default: all cores, %(default)s)",
    )


def columns_from(args: argparse.Namespace) -> dict[str, str]:
    columns = {kind: getattr(args, kind) for kind in ID_FLAGS if getattr(args, kind)}
    if not columns:
        flags = ", ".join(f"{flag} COLUMN" for flag in ID_FLAGS.values())
        raise InputError(f"name at least one identifier column: {flags}")
    return columns


def load_table(
    path: Path, args: argparse.Namespace, extra_columns: tuple[str, ...] = ()
) -> tuple[Profile, NormalisedTable]:
    """Read and normalise ``path`` with the identifier options in ``args``."""
    profile = profile_from_args(args)
    table = read_table(path, columns_from(args), profile, extra_columns)
    if not table.records:
        raise InputError(f"{path}: no row has a usable identifier ({table.total_rows} rows read)")
    return profile, table


def add_report_options(parser: argparse.ArgumentParser) -> None:
    """Where the JSON report goes, and whether to draw progress bars."""
    parser.add_argument(
        "--output", type=Path, help="write the result as JSON here (default: standard output)"
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bars (they go to stderr)"
    )


def show_progress(args: argparse.Namespace) -> bool:
    return not args.no_progress and sys.stderr.isatty()


def write_report(args: argparse.Namespace, report: dict[str, object], summary: str) -> None:
    """The JSON report to ``--output`` (with a one-line summary on stderr), else stdout."""
    text = json.dumps(report, indent=2)
    if args.output:
        args.output.write_text(text + "\n")
        print(f"{summary}; wrote {args.output}", file=sys.stderr)
    else:
        print(text)
