"""Connection options for commands that talk to a key node, and opening the channel."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import grpc

from keynode.transport.tls import open_channel

DEFAULT_SERVER = "127.0.0.1:50051"


def add_connection_options(parser: argparse.ArgumentParser, *, certs_required: bool) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--server",
        default=os.environ.get("KEYNODE_SERVER", DEFAULT_SERVER),
        help="the key node's HOST:PORT (default: $KEYNODE_SERVER or %(default)s)",
    )
    group.add_argument(
        "--certs",
        type=Path,
        required=certs_required,
        metavar="DIR",
        help="your certificate directory from `keynode pki issue` (tls.crt, tls.key, ca.crt)",
    )
    group.add_argument(
        "--server-name",
        metavar="NAME",
        help="the name in the key node's certificate, if it differs from the host in --server",
    )


def channel_from(args: argparse.Namespace) -> grpc.Channel:
    """mTLS when --certs is given, else plaintext (refused unless the server is loopback)."""
    return open_channel(args.server, args.certs, server_name=args.server_name)
