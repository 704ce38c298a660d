"""A small certificate authority for one keynode network: who may call, and as whom.

Two modules: :mod:`keynode.pki.authority` (identities in certificates, the CA, issuing)
and :mod:`keynode.pki.revocation` (the CA-signed CRL and reading it safely). Their public
names are re-exported here; callers write ``from keynode import pki`` and ``pki.issue``.
See ``docs/pki.md``.
"""

from keynode.pki.authority import (
    AUDITOR,
    CA_CERT,
    CA_KEY,
    CA_VALIDITY,
    CERT_VALIDITY,
    CLOCK_SKEW,
    CRL,
    CRL_VALIDITY,
    ISSUED,
    KEY_NODE,
    OPERATOR,
    PARTNER,
    ROLES,
    TLS_CERT,
    TLS_KEY,
    URI_SCHEME,
    PeerIdentity,
    check_name,
    identity_uri,
    init_ca,
    issue,
    load_certificate,
    network_of,
    parse_identity,
    read_certificate,
    read_file,
    verify_certificate,
)
from keynode.pki.revocation import CrlFile, RevocationList, refresh_crl, revoke

__all__ = [
    "AUDITOR",
    "CA_CERT",
    "CA_KEY",
    "CA_VALIDITY",
    "CERT_VALIDITY",
    "CLOCK_SKEW",
    "CRL",
    "CRL_VALIDITY",
    "ISSUED",
    "KEY_NODE",
    "OPERATOR",
    "PARTNER",
    "ROLES",
    "TLS_CERT",
    "TLS_KEY",
    "URI_SCHEME",
    "CrlFile",
    "PeerIdentity",
    "RevocationList",
    "check_name",
    "identity_uri",
    "init_ca",
    "issue",
    "load_certificate",
    "network_of",
    "parse_identity",
    "read_certificate",
    "read_file",
    "refresh_crl",
    "revoke",
    "verify_certificate",
]
