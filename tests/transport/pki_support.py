"""The network PKI the transport tests share: a CA, the key node, partners, an operator,
an auditor, and a rogue CA that issues look-alike certificates for the same network name.

A module of its own (not conftest.py) so that tests can import its names directly."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from keynode import pki

NETWORK = "retail"
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Network:
    """Paths of the CA directory and of each party's certificate directory."""

    root: Path
    ca: Path

    def certs(self, name: str) -> Path:
        return self.root / name


def make_network(root: Path, now: dt.datetime | None) -> Network:
    net = Network(root=root, ca=root / "ca")
    pki.init_ca(NETWORK, net.ca, now=now)
    pki.issue(
        net.ca,
        pki.KEY_NODE,
        "retailer",
        net.certs("key-node"),
        dns_names=["localhost"],
        ips=["127.0.0.1"],
        now=now,
    )
    for role, party in [
        (pki.PARTNER, "bank"),
        (pki.PARTNER, "insurer"),
        (pki.PARTNER, "telco"),
        (pki.OPERATOR, "olga"),
        (pki.AUDITOR, "aude"),
    ]:
        pki.issue(net.ca, role, party, net.certs(party), now=now)
    pki.init_ca(NETWORK, root / "rogue-ca", now=now)
    pki.issue(root / "rogue-ca", pki.PARTNER, "bank", net.certs("rogue-bank"), now=now)
    return net
