"""``keynode pki``: the network operator's certificate authority (init, issue, revoke, show)."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from keynode import pki
from keynode.errors import InputError, VerificationError


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "pki",
        help="run the network's certificate authority",
        description=(
            "Create the network's CA and issue, revoke and inspect the certificates every "
            "keynode caller presents. A certificate names its role (key-node, partner, "
            "operator, auditor) and its party; services authorise each call from it."
        ),
    )
    actions = parser.add_subparsers(dest="pki_command", metavar="ACTION", required=True)

    init = actions.add_parser(
        "init",
        help="create a CA for a network",
        description="Create a CA key, a self-signed CA certificate and an empty revocation "
        "list in a new directory. Keep that directory offline: it can mint identities.",
        epilog="example: keynode pki init --network retail --out /secure/retail-ca",
    )
    init.add_argument(
        "--network", required=True, metavar="NAME", help="network name (lowercase DNS label)"
    )
    init.add_argument("--out", type=Path, required=True, metavar="DIR", help="new CA directory")
    _days(init, pki.CA_VALIDITY, "CA certificate")
    init.set_defaults(run=run_init)

    issue = actions.add_parser(
        "issue",
        help="issue a certificate for a party",
        description=(
            "Issue a key and certificate for one party in one role, into a directory\n"
            "holding tls.key, tls.crt and the network's ca.crt. Only the key node's\n"
            "certificate can serve; give it the names and addresses its clients dial."
        ),
        epilog="examples:\n"
        "  keynode pki issue --ca ca --role key-node --party retailer --out kn "
        "--dns keynode.example --ip 10.0.0.5\n"
        "  keynode pki issue --ca ca --role partner --party bank --out bank",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    issue.add_argument("--ca", type=Path, required=True, metavar="DIR", help="CA directory")
    issue.add_argument("--role", required=True, choices=sorted(pki.ROLES))
    issue.add_argument(
        "--party", required=True, metavar="NAME", help="party name (lowercase DNS label)"
    )
    issue.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="directory for the certificate"
    )
    issue.add_argument(
        "--dns", action="append", default=[], metavar="NAME", help="server DNS name (key-node)"
    )
    issue.add_argument(
        "--ip", action="append", default=[], metavar="ADDR", help="server IP address (key-node)"
    )
    _days(issue, pki.CERT_VALIDITY, "certificate")
    issue.set_defaults(run=run_issue)

    revoke = actions.add_parser(
        "revoke",
        help="revoke a certificate, or all of a party's",
        description="Add certificates to the CA's revocation list (crl.pem) and re-sign it. "
        "Copy crl.pem to the servers: they re-read it when it changes and refuse revoked "
        "callers on their next call. Without --serial or --party, only re-sign the list "
        "(do so before it goes stale; servers refuse everyone on a stale list).",
    )
    revoke.add_argument("--ca", type=Path, required=True, metavar="DIR", help="CA directory")
    target = revoke.add_mutually_exclusive_group()
    target.add_argument(
        "--serial", type=_serial, metavar="HEX", help="serial number in hex, as `show` prints"
    )
    target.add_argument(
        "--party", metavar="NAME", help="revoke every certificate issued to this party"
    )
    _days(revoke, pki.CRL_VALIDITY, "revocation list")
    revoke.set_defaults(run=run_revoke)

    show = actions.add_parser(
        "show",
        help="print a certificate's identity (and check it against a CA)",
        description="Print the identity, validity and names of a certificate. With --ca, "
        "also verify it against that CA now and check its revocation list; the exit status "
        "is then 1 unless the certificate is good.",
    )
    show.add_argument("cert", type=Path, help="certificate file, or a directory with tls.crt")
    show.add_argument(
        "--ca", type=Path, metavar="DIR", help="CA directory, or a directory holding ca.crt"
    )
    show.set_defaults(run=run_show)


def _days(parser: argparse.ArgumentParser, default: dt.timedelta, what: str) -> None:
    parser.add_argument(
        "--days",
        type=int,
        metavar="N",
        default=default.days,
        help=f"validity of the {what} in days (default: %(default)s)",
    )


def _serial(text: str) -> int:
    try:
        return int(text.replace(":", ""), 16)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a hex serial number: {text!r}") from exc


def _validity(args: argparse.Namespace) -> dt.timedelta:
    if args.days < 1:
        raise InputError("--days must be at least 1")
    return dt.timedelta(days=args.days)


def run_init(args: argparse.Namespace) -> int:
    cert = pki.init_ca(args.network, args.out, validity=_validity(args))
    print(f"created the CA of network {args.network!r} in {args.out}")
    print(f"  valid until {cert.not_valid_after_utc:%Y-%m-%d}; {args.out / pki.CA_KEY} is secret")
    return 0


def run_issue(args: argparse.Namespace) -> int:
    cert = pki.issue(
        args.ca,
        args.role,
        args.party,
        args.out,
        dns_names=args.dns,
        ips=args.ip,
        validity=_validity(args),
    )
    identity = pki.parse_identity(cert)
    print(f"issued {identity} in {args.out}")
    print(f"  valid until {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    validity = _validity(args)
    target = args.serial if args.serial is not None else args.party
    if target is None:
        pki.refresh_crl(args.ca, validity=validity)
        print(f"re-signed {args.ca / pki.CRL}")
        return 0
    revoked = pki.revoke(args.ca, target, validity=validity)
    for serial in revoked:
        print(f"revoked serial {serial:x}")
    if not revoked:
        print("already revoked; nothing new")
    print(f"now copy {args.ca / pki.CRL} to every keynode server")
    return 0


def run_show(args: argparse.Namespace) -> int:
    path = args.cert / pki.TLS_CERT if args.cert.is_dir() else args.cert
    cert = pki.read_certificate(path)
    try:
        identity: str = str(pki.parse_identity(cert))
    except VerificationError as exc:
        identity = f"none ({exc})"
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = ", ".join(str(name.value) for name in sans)
    except x509.ExtensionNotFound:
        names = "none"
    print(f"identity:    {identity}")
    print(f"subject:     {cert.subject.rfc4514_string()}")
    print(f"issuer:      {cert.issuer.rfc4514_string()}")
    print(f"serial:      {cert.serial_number:x}")
    print(
        f"valid:       {cert.not_valid_before_utc:%Y-%m-%d %H:%M} to "
        f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    )
    print(f"names:       {names}")
    print(f"sha256:      {cert.fingerprint(hashes.SHA256()).hex(':')}")
    if args.ca is None:
        return 0
    return _check(cert, args.ca)


def _check(cert: x509.Certificate, ca_dir: Path) -> int:
    ca_cert = pki.read_certificate(ca_dir / pki.CA_CERT)
    try:
        peer = pki.verify_certificate(cert, ca_cert)
        crl = ca_dir / pki.CRL
        if crl.exists() and pki.RevocationList.from_crl(pki.read_file(crl), ca_cert).is_revoked(
            peer
        ):
            raise VerificationError("certificate revoked")
    except VerificationError as exc:
        print(f"status:      INVALID: {exc}")
        return 1
    print(f"status:      valid for network {peer.network!r}")
    return 0
