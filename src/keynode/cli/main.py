"""The ``keynode`` command: one sub-command module per job, registered below."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from keynode import __version__
from keynode.errors import KeynodeError


def _command_modules() -> list[ModuleType]:
    # Imported lazily so that `keynode --help` stays fast and one broken optional
    # feature cannot break the others.
    from keynode.cli import account, admin, aggregate, audit, demo, match, pki, serve

    return [serve, match, aggregate, demo, admin, account, audit, pki]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keynode",
        description=(
            "Privacy-preserving customer-base matching for a customer-sharing network. "
            "The key node runs `keynode serve`; partners run `keynode match`; "
            "`keynode demo` shows a whole synthetic network on this machine."
        ),
    )
    parser.add_argument("--version", action="version", version=f"keynode {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail to stderr")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _command_modules():
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code (0 ok, 1 failure, 2 usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.run(args) or 0)
    except KeynodeError as exc:
        print(f"keynode: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("keynode: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`keynode audit show | head`): stop quietly, as cat does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
