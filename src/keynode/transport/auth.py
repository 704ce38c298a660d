"""Per-call authorisation from the peer's verified client certificate.

gRPC Python server interceptors cannot see the client certificate, so each servicer
method asks here, through its :class:`~grpc.ServicerContext`, who is calling::

    class Matching(MatchingServicer):
        def __init__(self, authorizer: Authorizer) -> None:
            self._auth = authorizer

        @grpc_errors
        def OpenSession(self, request, context):
            peer = self._auth.require(context, roles={PARTNER}, party=request.partner)
            ...

By the time a handler runs, the TLS handshake has verified the certificate chain and
validity period against the network CA; this module adds identity parsing, the network,
revocation, the role and "acts only as itself". Failures raise
:class:`~keynode.errors.VerificationError` (UNAUTHENTICATED: who are you?) or
:class:`~keynode.errors.PolicyDenied` (PERMISSION_DENIED: not you, not this), which
:func:`keynode.transport.status.grpc_errors` turns into statuses. The peer learns only
the category; the detail goes to the server log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

import grpc

from keynode import pki
from keynode.errors import PolicyDenied, VerificationError

log = logging.getLogger(__name__)


class RevocationSource(Protocol):
    """Anything that knows whether a peer's certificate is revoked (a CRL file, the broker).

    It raises :class:`VerificationError` when it cannot tell: revocation fails closed.
    """

    def is_revoked(self, peer: pki.PeerIdentity) -> bool:
        """Whether ``peer``'s certificate may no longer be used."""
        ...


def peer_identity(context: grpc.ServicerContext) -> pki.PeerIdentity:
    """The identity in the verified client certificate of this call (no revocation check).

    Raises :class:`VerificationError` on a plaintext connection or without a certificate.
    """
    auth = context.auth_context()
    certs = auth.get("x509_pem_cert")
    if auth.get("transport_security_type") != [b"ssl"] or not certs:
        raise VerificationError("a client certificate is required")
    return pki.parse_identity(pki.load_certificate(certs[0]))


class Authorizer:
    """Authorises calls for one network against one revocation source."""

    def __init__(self, network: str, revocations: RevocationSource) -> None:
        self._network = pki.check_name("network", network)
        self._revocations = revocations

    def peer(self, context: grpc.ServicerContext) -> pki.PeerIdentity:
        """The caller's identity, refused if it is for another network or revoked."""
        try:
            peer = peer_identity(context)
        except VerificationError as exc:
            log.warning("unauthenticated call from %s: %s", context.peer(), exc)
            raise
        if peer.network != self._network:
            log.warning("%s from %s is for network %r", peer, context.peer(), peer.network)
            raise VerificationError("certificate is not for this network")
        if self._revocations.is_revoked(peer):
            log.warning("revoked certificate: %s from %s", peer, context.peer())
            raise VerificationError("certificate revoked")
        return peer

    def require(
        self,
        context: grpc.ServicerContext,
        roles: Iterable[str],
        party: str | None = None,
    ) -> pki.PeerIdentity:
        """The caller, if it holds one of ``roles`` and (when given) is ``party`` itself.

        ``party`` is the party a request claims to act as or for; a caller may act only as
        itself, whatever its role. An empty or unknown ``roles`` is a programming error.
        """
        wanted = frozenset(roles)
        if not wanted or not wanted <= pki.ROLES:
            raise ValueError(f"require() needs roles from {sorted(pki.ROLES)}, got {wanted}")
        peer = self.peer(context)
        if peer.role not in wanted:
            log.warning("%s refused: needs role %s", peer, "/".join(sorted(wanted)))
            raise PolicyDenied(f"the {peer.role} role may not make this call")
        if party is not None and peer.party != party:
            log.warning("%s refused: tried to act as %r", peer, party)
            raise PolicyDenied(f"{peer.party!r} may act only as itself")
        return peer
