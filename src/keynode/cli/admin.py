"""Operator commands: ``keynode partner``, ``keynode policy`` and ``keynode sessions``.

Each talks to the key node's Broker service over mTLS with an operator certificate.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from keynode.cli.remote import add_connection_options, channel_from
from keynode.client.broker import OperatorClient
from keynode.pki import read_file
from keynode.v1 import broker_pb2 as pb


def _client(args: argparse.Namespace) -> OperatorClient:
    return OperatorClient(channel_from(args), target=args.server)


def _row(s: pb.PartnerStanding) -> str:
    state = "resigned" if s.resigned else f"level {s.level} ({s.level_name})"
    return f"{s.partner:<20} {state}"


def _print_standing(s: pb.PartnerStanding) -> None:
    print(_row(s))
    if s.allowed_operations:
        print("  may run: " + ", ".join(s.allowed_operations))
    print(f"  policy {s.policy_version} ({s.policy_hash[:16]})")


def run_add(args: argparse.Namespace) -> int:
    _print_standing(_client(args).add_partner(args.name, read_file(args.cert)))
    return 0


def run_list(args: argparse.Namespace) -> int:
    partners = _client(args).partners()
    if args.json:
        print(json.dumps([_as_dict(s) for s in partners], indent=2))
    else:
        for s in partners:
            print(_row(s))
        if not partners:
            print("no partners enrolled")
    return 0


def _as_dict(s: pb.PartnerStanding) -> dict[str, Any]:
    return {
        "partner": s.partner,
        "level": s.level,
        "level_name": s.level_name,
        "resigned": s.resigned,
        "allowed_operations": list(s.allowed_operations),
    }


def run_show(args: argparse.Namespace) -> int:
    _print_standing(_client(args).show(args.name))
    return 0


def run_level(args: argparse.Namespace) -> int:
    _print_standing(_client(args).set_level(args.name, args.level))
    return 0


def run_resign(args: argparse.Namespace) -> int:
    done = _client(args).resign(args.name, args.reason)
    print(
        f"{done.partner} resigned: {done.sessions_ended} sessions ended, keys destroyed: "
        + ", ".join(done.destroyed_keys)
    )
    return 0


def run_policy_load(args: argparse.Namespace) -> int:
    info = _client(args).load_policy(read_file(args.file))
    print(f"loaded policy {info.version} ({info.hash})")
    return 0


def run_policy_show(args: argparse.Namespace) -> int:
    info = _client(args).policy()
    if args.json:
        print(info.policy.decode())
    else:
        print(f"policy {info.version} ({info.hash})")
        doc = json.loads(info.policy)
        for level in doc["levels"]:
            ops = sorted(
                o for o, r in doc["operations"].items() if r["min_level"] <= level["level"]
            )
            print(f"  level {level['level']} {level['name']}: {', '.join(ops)}")
        print("  limits: " + json.dumps(doc["limits"], sort_keys=True))
    return 0


def run_sessions(args: argparse.Namespace) -> int:
    sessions = _client(args).sessions()
    for s in sessions:
        print(f"{s.session_id:<28} {s.partner:<20} {s.kind:<8} {s.age_s:8.1f} s")
    if not sessions:
        print("no open sessions")
    return 0


def register(commands: Any) -> None:
    partner = commands.add_parser(
        "partner", help="operator: enrol partners, move levels, resign (mTLS, operator cert)"
    )
    sub = partner.add_subparsers(dest="partner_command", metavar="ACTION", required=True)

    add = sub.add_parser("add", help="enrol a partner at level 1 with its certificate")
    add.add_argument("name", help="the partner's name (as in its certificate)")
    add.add_argument("--cert", type=Path, required=True, help="the partner's tls.crt")
    add.set_defaults(run=run_add)

    lst = sub.add_parser("list", help="every partner and its level")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(run=run_list)

    show = sub.add_parser("show", help="one partner's standing and allowed operations")
    show.add_argument("name")
    show.set_defaults(run=run_show)

    level = sub.add_parser("level", help="move a partner to a sharing level (1-6)")
    level.add_argument("name")
    level.add_argument("level", type=int, choices=range(1, 7), metavar="LEVEL")
    level.set_defaults(run=run_level)

    resign = sub.add_parser(
        "resign",
        help="make a partner's resignation final",
        description=(
            "End every grant and session of the partner, destroy its keys (ECDH scalar, "
            "token and lease keys), delete its leases and uploads, revoke its certificate. "
            "Each step is logged. This cannot be undone; the partner may re-enrol later "
            "with a new certificate and gets fresh keys."
        ),
    )
    resign.add_argument("name")
    resign.add_argument("--reason", default="operator-decision", help="a short lowercase token")
    resign.set_defaults(run=run_resign)

    policy = commands.add_parser("policy", help="operator: load or show the network policy")
    psub = policy.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    load = psub.add_parser("load", help="load a policy file (logged with its hash)")
    load.add_argument("file", type=Path)
    load.set_defaults(run=run_policy_load)
    pshow = psub.add_parser("show", help="the policy in force")
    pshow.add_argument("--json", action="store_true", help="print the policy document")
    pshow.set_defaults(run=run_policy_show)

    sessions = commands.add_parser("sessions", help="operator: open matching sessions")
    sessions.set_defaults(run=run_sessions)

    for parser in (add, lst, show, level, resign, load, pshow, sessions):
        add_connection_options(parser, certs_required=True)
