"""gRPC credentials from a keynode certificate directory, and the loopback-only plaintext rule.

A certificate directory is what ``keynode pki issue`` writes: ``tls.key``, ``tls.crt``
and the network's ``ca.crt``. Servers require and verify a client certificate from the
same network CA; clients verify the server against it. Plaintext is for loopback only:
anything else needs the loudly named ``insecure_plaintext_on_network=True``.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from keynode import pki
from keynode.errors import InputError, VerificationError

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 4 * 1024 * 1024 + 64 * 1024
"""The largest gRPC message either end accepts: a 4 MiB chunk plus framing headroom."""


@dataclass(frozen=True)
class CertDir:
    """The PEM contents of a certificate directory, checked to be usable."""

    key: bytes
    cert: bytes
    ca: bytes
    identity: pki.PeerIdentity

    @classmethod
    def load(cls, path: Path) -> CertDir:
        """Read ``tls.key``, ``tls.crt`` and ``ca.crt``; any problem is an :class:`InputError`."""
        key = pki.read_file(path / pki.TLS_KEY)
        leaf = pki.read_certificate(path / pki.TLS_CERT)
        ca = pki.read_certificate(path / pki.CA_CERT)
        try:
            private = serialization.load_pem_private_key(key, password=None)
        except (ValueError, TypeError) as exc:
            raise InputError(f"{path / pki.TLS_KEY} is not an unencrypted PEM private key") from exc
        if private.public_key() != leaf.public_key():
            raise InputError(f"{path / pki.TLS_KEY} does not belong to {path / pki.TLS_CERT}")
        try:
            identity = pki.parse_identity(leaf)
        except VerificationError as exc:
            raise InputError(f"{path / pki.TLS_CERT}: {exc}") from exc
        return cls(key=key, cert=_pem(leaf), ca=_pem(ca), identity=identity)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def server_credentials(cert_dir: Path) -> grpc.ServerCredentials:
    """mTLS server credentials: present the key node's certificate, demand a client's."""
    files = CertDir.load(cert_dir)
    if files.identity.role != pki.KEY_NODE:
        raise InputError(
            f"{cert_dir} holds a {files.identity.role} certificate, not a key-node one"
        )
    return grpc.ssl_server_credentials(
        [(files.key, files.cert)], root_certificates=files.ca, require_client_auth=True
    )


def channel_credentials(cert_dir: Path) -> grpc.ChannelCredentials:
    """mTLS client credentials: present our certificate, trust only the network CA."""
    files = CertDir.load(cert_dir)
    return grpc.ssl_channel_credentials(
        root_certificates=files.ca, private_key=files.key, certificate_chain=files.cert
    )


def _host(address: str) -> str | None:
    """The host part of a bind address or channel target; None for a Unix socket."""
    for scheme in ("dns:///", "dns:", "ipv4:", "ipv6:"):
        if address.startswith(scheme):
            address = address[len(scheme) :]
            break
    if address.startswith(("unix:", "unix-abstract:")):
        return None
    if address.startswith("["):
        return address[1 : address.find("]")]
    host, colon, _port = address.rpartition(":")
    return host if colon else address


def is_loopback(address: str) -> bool:
    """Whether ``address`` (``host:port`` or a gRPC target) stays on this machine.

    Names other than ``localhost`` are not resolved: they count as the network.
    """
    host = _host(address)
    if host is None:
        return True
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_plaintext(address: str, *, insecure_plaintext_on_network: bool = False) -> None:
    """Refuse plaintext on anything but loopback unless explicitly, insecurely allowed."""
    if is_loopback(address):
        return
    if not insecure_plaintext_on_network:
        raise InputError(
            f"refusing plaintext gRPC on {address}: it is not a loopback address; "
            "use TLS certificates (keynode pki issue)"
        )
    log.warning("INSECURE: plaintext gRPC on network address %s; anyone can listen", address)


def channel_options(server_name: str | None = None) -> list[tuple[str, Any]]:
    """The options keynode clients use: the message cap and, if given, the TLS name to check."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    return options


def open_channel(
    target: str,
    cert_dir: Path | None,
    *,
    server_name: str | None = None,
    insecure_plaintext_on_network: bool = False,
    extra_options: Sequence[tuple[str, Any]] = (),
) -> grpc.Channel:
    """A channel to a keynode server: mTLS from ``cert_dir``, or plaintext to loopback.

    ``server_name`` is the name the server's certificate must carry when it differs from
    the host in ``target`` (e.g. dialling an IP address for a DNS-named certificate).
    """
    options = channel_options(server_name) + list(extra_options)
    if cert_dir is None:
        check_plaintext(target, insecure_plaintext_on_network=insecure_plaintext_on_network)
        return grpc.insecure_channel(target, options=options)
    return grpc.secure_channel(target, channel_credentials(cert_dir), options=options)
