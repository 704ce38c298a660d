"""A small certificate authority for one keynode network: who may call, and as whom.

Every caller of a keynode service presents a certificate issued by the network's CA.
The certificate names the caller's **role** and **party** in one URI subject
alternative name, ``keynode://<network>/<role>/<party>``, which is the only field
:func:`parse_identity` trusts; the subject (``CN=<party>, OU=<role>, O=<network>``) says
the same for humans and tools. Keys are ECDSA P-256, which BoringSSL (gRPC) accepts for
server and client certificates alike.

A CA directory holds::

    ca.key           the CA private key (0600; keep this directory offline)
    ca.crt           the self-signed CA certificate (subject O=<network>)
    crl.pem          the CA-signed X.509 revocation list, re-signed on every revocation
    issued/<serial>.crt   a copy of every certificate issued, for revocation by party

and an issued certificate directory holds ``tls.key`` (0600), ``tls.crt`` and ``ca.crt``.
Nothing here touches gRPC; :mod:`keynode.transport` builds on it. Revocation is in
:mod:`keynode.pki.revocation`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keynode.errors import InputError, VerificationError

log = logging.getLogger(__name__)

KEY_NODE = "key-node"
PARTNER = "partner"
OPERATOR = "operator"
AUDITOR = "auditor"
ROLES = frozenset({KEY_NODE, PARTNER, OPERATOR, AUDITOR})
"""The roles a certificate can carry. Only the key node's certificate is a server one."""

URI_SCHEME = "keynode"
CA_VALIDITY = dt.timedelta(days=3650)
CERT_VALIDITY = dt.timedelta(days=365)
CRL_VALIDITY = dt.timedelta(days=90)
CLOCK_SKEW = dt.timedelta(minutes=5)
"""Certificates are valid from this long before their issue time, for peers whose clock lags."""

CA_KEY, CA_CERT, CRL, ISSUED = "ca.key", "ca.crt", "crl.pem", "issued"
TLS_KEY, TLS_CERT = "tls.key", "tls.crt"

# A DNS label: safe in a URI path, a file name and a certificate subject.
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_URI = re.compile(rf"{URI_SCHEME}://([^/]+)/([^/]+)/([^/]+)")


@dataclass(frozen=True)
class PeerIdentity:
    """Who a verified certificate speaks for: a party, in one role, on one network."""

    role: str
    party: str
    serial: int
    network: str

    def __str__(self) -> str:
        return f"{self.role} {self.party!r} (serial {self.serial:x})"


def _now(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        raise InputError("the clock must be timezone-aware")
    return now


def check_name(kind: str, name: str) -> str:
    """Return ``name`` if it is a valid network or party name (a lowercase DNS label)."""
    if not _NAME.fullmatch(name):
        raise InputError(
            f"invalid {kind} name {name!r}: use 1-63 lowercase letters, digits and inner '-'"
        )
    return name


def identity_uri(network: str, role: str, party: str) -> str:
    """The URI SAN that carries a certificate's identity."""
    return f"{URI_SCHEME}://{network}/{role}/{party}"


# --- reading ---------------------------------------------------------------------------


def load_certificate(pem: bytes) -> x509.Certificate:
    """Parse one PEM certificate; a malformed one is a :class:`VerificationError`."""
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise VerificationError("malformed certificate") from exc


def read_file(path: Path) -> bytes:
    """Read a credential file, turning a missing or unreadable file into :class:`InputError`."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc


def read_certificate(path: Path) -> x509.Certificate:
    """Load a PEM certificate file; a missing or malformed file is an :class:`InputError`."""
    try:
        return load_certificate(read_file(path))
    except VerificationError as exc:
        raise InputError(f"{path} is not a PEM certificate") from exc


def parse_identity(cert: x509.Certificate) -> PeerIdentity:
    """The identity a leaf certificate carries, from its single ``keynode://`` URI SAN.

    Does not check the signature or validity period: the TLS handshake (or
    :func:`verify_certificate`) does. Raises :class:`VerificationError` for anything else:
    a CA certificate, no or several identity URIs, an unknown role or a malformed name.
    """
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if constraints.ca:
            raise VerificationError("a CA certificate is not a peer identity")
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = [
            u
            for u in sans.get_values_for_type(x509.UniformResourceIdentifier)
            if u.startswith(f"{URI_SCHEME}:")
        ]
    except (x509.ExtensionNotFound, ValueError) as exc:
        raise VerificationError("certificate carries no keynode identity") from exc
    if len(uris) != 1:
        raise VerificationError("certificate must carry exactly one keynode identity")
    match = _URI.fullmatch(uris[0])
    if not match:
        raise VerificationError("malformed keynode identity")
    network, role, party = match.groups()
    if role not in ROLES or not _NAME.fullmatch(network) or not _NAME.fullmatch(party):
        raise VerificationError("malformed keynode identity")
    return PeerIdentity(role=role, party=party, serial=cert.serial_number, network=network)


def network_of(ca_cert: x509.Certificate) -> str:
    """The network a CA certificate was created for (its subject ``O``)."""
    names = ca_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    if (
        len(names) != 1
        or not isinstance(names[0].value, str)
        or not _NAME.fullmatch(names[0].value)
    ):
        raise VerificationError("not a keynode network CA certificate")
    return names[0].value


def verify_certificate(
    cert: x509.Certificate, ca_cert: x509.Certificate, *, now: dt.datetime | None = None
) -> PeerIdentity:
    """Check ``cert`` against the network CA at ``now`` and return its identity.

    Checks the CA's signature, the validity period, the RFC 5280 profile, client-auth
    usage and that the identity names the CA's network — what the TLS handshake checks,
    for tools and tests that are not in one. Revocation is the caller's business.
    """
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store([ca_cert]))
        .time(_now(now))
        .build_client_verifier()
    )
    try:
        verifier.verify(cert, [])
    except verification.VerificationError as exc:
        raise VerificationError(f"certificate does not verify: {exc}") from exc
    identity = parse_identity(cert)
    if identity.network != network_of(ca_cert):
        raise VerificationError("certificate is for another network")
    return identity


# --- issuing ---------------------------------------------------------------------------


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from the start (never briefly world-readable)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as exc:
        raise InputError(f"{path} already exists; refusing to overwrite it") from exc
    except OSError as exc:
        raise InputError(f"cannot create {path}: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_new(path, pem, 0o600)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _make_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create directory {path}: {exc.strerror or exc}") from exc


def _load_ca(ca_dir: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    cert = read_certificate(ca_dir / CA_CERT)
    try:
        key = serialization.load_pem_private_key(read_file(ca_dir / CA_KEY), password=None)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{ca_dir / CA_KEY} is not an unencrypted PEM private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise InputError(f"{ca_dir / CA_KEY} does not belong to {ca_dir / CA_CERT}")
    return key, cert


def init_ca(
    network: str,
    out_dir: Path,
    *,
    now: dt.datetime | None = None,
    validity: dt.timedelta = CA_VALIDITY,
) -> x509.Certificate:
    """Create a network CA in ``out_dir``: key, self-signed certificate, empty CRL."""
    check_name("network", network)
    now = _now(now)
    _make_dir(out_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"keynode network CA {network}"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, network),
        ]
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(out_dir / CA_KEY, key)
    _write_new(out_dir / CA_CERT, _pem(cert), 0o644)
    _make_dir(out_dir / ISSUED)
    _write_new(out_dir / CRL, _sign_crl(key, cert, [], 1, now, CRL_VALIDITY), 0o644)
    return cert


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def issue(
    ca_dir: Path,
    role: str,
    party: str,
    out_dir: Path,
    *,
    dns_names: Sequence[str] = (),
    ips: Sequence[str] = (),
    now: dt.datetime | None = None,
    validity: dt.timedelta = CERT_VALIDITY,
) -> x509.Certificate:
    """Issue a certificate for ``party`` in ``role`` into ``out_dir`` (tls.key, tls.crt, ca.crt).

    Every certificate may authenticate a client; only the key node's also serves, and it
    needs the DNS names or IP addresses its clients dial (``dns_names``, ``ips``).
    """
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}; one of {', '.join(sorted(ROLES))}")
    check_name("party", party)
    if role != KEY_NODE and (dns_names or ips):
        raise InputError("only a key-node certificate carries DNS names or IP addresses")
    try:
        addresses = [ipaddress.ip_address(ip) for ip in ips]
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    for name in (TLS_KEY, TLS_CERT, CA_CERT):
        if (out_dir / name).exists():
            raise InputError(f"{out_dir / name} already exists; refusing to overwrite it")
    now = _now(now)
    ca_key, ca_cert = _load_ca(ca_dir)
    network = network_of(ca_cert)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(identity_uri(network, role, party))
    ]
    sans += [x509.DNSName(name) for name in dns_names]
    sans += [x509.IPAddress(address) for address in addresses]
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if role == KEY_NODE:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, party),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, network),
        ]
    )
    not_after = min(now + validity, ca_cert.not_valid_after_utc)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _make_dir(out_dir)
    _write_key(out_dir / TLS_KEY, key)
    _write_new(out_dir / TLS_CERT, _pem(cert), 0o644)
    _write_new(out_dir / CA_CERT, _pem(ca_cert), 0o644)
    _write_new(ca_dir / ISSUED / f"{cert.serial_number:x}.crt", _pem(cert), 0o644)
    return cert


def _sign_crl(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    revoked: Iterable[x509.RevokedCertificate],
    number: int,
    now: dt.datetime,
    validity: dt.timedelta,
) -> bytes:
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now)
        .next_update(now + validity)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
    )
    for entry in revoked:
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
