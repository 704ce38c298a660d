"""A partner's own account at the key node: ``keynode standing`` and ``keynode resign``."""

from __future__ import annotations

import argparse
from typing import Any

from keynode.cli.remote import add_connection_options, channel_from
from keynode.client.broker import PartnerBrokerClient


def _client(args: argparse.Namespace) -> PartnerBrokerClient:
    return PartnerBrokerClient(channel_from(args), target=args.server)


def run_standing(args: argparse.Namespace) -> int:
    s = _client(args).standing()
    print(f"{s.partner}: level {s.level} ({s.level_name}), policy {s.policy_version}")
    print("may run: " + (", ".join(s.allowed_operations) or "nothing"))
    return 0


def run_resign(args: argparse.Namespace) -> int:
    if not args.yes:
        print("resigning is final: your keys are destroyed and your certificate revoked.")
        print("run again with --yes to resign.")
        return 2
    done = _client(args).resign(args.reason)
    print(f"{done.partner} resigned; keys destroyed: {', '.join(done.destroyed_keys)}")
    return 0


def register(commands: Any) -> None:
    standing = commands.add_parser(
        "standing", help="partner: your level and what it allows (mTLS, partner cert)"
    )
    standing.set_defaults(run=run_standing)
    resign = commands.add_parser(
        "resign",
        help="partner: leave the network for good (mTLS, partner cert)",
        description=(
            "Resign from the network. Your sessions and grants end, the key node destroys "
            "every key it holds for you and revokes your certificate; audience tokens and "
            "blinded values you kept become meaningless. This cannot be undone."
        ),
    )
    resign.add_argument("--reason", default="partner-request", help="a short lowercase token")
    resign.add_argument("--yes", action="store_true", help="confirm")
    resign.set_defaults(run=run_resign)
    for parser in (standing, resign):
        add_connection_options(parser, certs_required=True)
