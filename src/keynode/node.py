"""The key node's process: broker, matching and audit log behind one mTLS server.

A :class:`KeyNode` owns a state directory::

    STATE/keynode.db          policy log and broker tables (SQLite; or --database URL)
    STATE/log-signer.key      the policy log's checkpoint key (0600), created on first start
    STATE/log-verifier.pub    its verifier key: give this to auditors
    STATE/grant-signer.pem    the broker's grant key (0600), created on first start

and serves ``keynode.v1.Broker``, ``keynode.v1.Matching``, ``keynode.v1.HashedOverlap``
and ``keynode.v1.AuditLog`` on one port with mutual TLS: every caller is identified by
its certificate. With ``hashed_keys`` the key node also runs its hashed-overlap hasher,
a client of its own server over loopback with the key node's certificate: it alone holds
the X25519 key (generated at start, never stored); the broker sees only digests.
With ``aggregates`` (an engine over the key node's identifiers and their segments) it
also serves ``keynode.v1.Aggregates``: partners' values summed per segment.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from keynode import pki
from keynode.aggregates.engine import AggregateEngine
from keynode.aggregates.service import SERVICE_NAME as AGGREGATES_SERVICE
from keynode.aggregates.service import AggregatesServicer
from keynode.aggregates.service import add_to_server as add_aggregates
from keynode.auditlog import NoteSigner, PolicyLog
from keynode.auditlog.store import LogStore
from keynode.auditlog_service.server import SERVICE_NAME as AUDIT_SERVICE
from keynode.auditlog_service.server import AuditLogServicer
from keynode.broker.core import AudienceDirectory, Broker
from keynode.broker.hashed_service import SERVICE_NAME as HASHED_SERVICE
from keynode.broker.hashed_service import HashedLimits, HashedMatches, HashedOverlapServicer
from keynode.broker.hashed_service import add_to_server as add_hashed
from keynode.broker.service import SERVICE_NAME as BROKER_SERVICE
from keynode.broker.service import BrokerServicer, CampaignSink
from keynode.broker.service import add_to_server as add_broker
from keynode.broker.store import BrokerStore
from keynode.client.hashed import KeyNodeHasher
from keynode.errors import InputError
from keynode.matching.engine import MatchingEngine
from keynode.matching.service import SERVICE_NAME as MATCHING_SERVICE
from keynode.matching.service import MatchingServicer
from keynode.matching.service import add_to_server as add_matching
from keynode.policy import GrantSigner
from keynode.storage import open_database
from keynode.transport import tls
from keynode.transport.auth import Authorizer
from keynode.transport.server import KeynodeServer, ServerSettings, build_server
from keynode.v1 import audit_pb2_grpc

log = logging.getLogger(__name__)

#: How long start() waits for the hashed-overlap hasher to register with the broker.
HASHER_START_S = 10.0


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


@dataclass(frozen=True)
class StateDir:
    """Where a key node keeps its database and signing keys."""

    root: Path

    @property
    def database(self) -> str:
        return str(self.root / "keynode.db")

    def log_signer(self, network: str) -> NoteSigner:
        """The policy log's checkpoint signer, created (with its .pub) on first use."""
        secret, public = self.root / "log-signer.key", self.root / "log-verifier.pub"
        if secret.exists():
            return NoteSigner.from_signer_key(secret.read_text(encoding="utf-8"))
        signer = NoteSigner.generate(f"keynode.{network}/policy-log")
        _write_secret(secret, (signer.signer_key() + "\n").encode())
        public.write_text(signer.verifier_key + "\n", encoding="utf-8")
        return signer

    def grant_signer(self) -> GrantSigner:
        """The broker's grant key, created on first use; its id is a hash of the public key."""
        path = self.root / "grant-signer.pem"
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise InputError(f"{path} is not an Ed25519 key")
        else:
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            _write_secret(path, pem)
        public = key.public_key().public_bytes_raw()
        return GrantSigner(key, "grant-" + hashlib.sha256(public).hexdigest()[:16])


class _Revocations:
    """Revoked if the broker revoked it (a resignation) or the network CRL lists it."""

    def __init__(self, broker: Broker, crl: pki.CrlFile | None) -> None:
        self._broker, self._crl = broker, crl

    def is_revoked(self, peer: pki.PeerIdentity) -> bool:
        return self._broker.is_revoked(peer) or (
            self._crl is not None and self._crl.is_revoked(peer)
        )


class KeyNode:
    """Broker, Matching, HashedOverlap and AuditLog for one key-node dataset, on one port.

    ``hashed_keys`` are the identifiers the key node's hasher digests for hashed matches;
    without them the hashed overlap answers UNAVAILABLE (no hasher is running).
    """

    def __init__(
        self,
        engine: MatchingEngine,
        state: StateDir,
        *,
        network: str,
        database: str | None = None,
        directory: AudienceDirectory | None = None,
        campaigns: CampaignSink | None = None,
        crl: pki.CrlFile | None = None,
        hashed_keys: Sequence[bytes] | None = None,
        hashed_limits: HashedLimits | None = None,
        aggregates: AggregateEngine | None = None,
    ) -> None:
        state.root.mkdir(parents=True, exist_ok=True)
        self.engine = engine
        self.state = state
        self.network = network
        self._db = open_database(database or state.database)
        signer = state.log_signer(network)
        self.policy_log = PolicyLog(LogStore(self._db, signer.name), signer)
        self.verifier_key = signer.verifier_key
        self.broker = Broker(
            self.policy_log, BrokerStore(self._db), state.grant_signer(), directory=directory
        )
        self.broker.attach_key_holder("ecdh_scalar", engine.keyring)
        self.broker.on_resign(engine.close_partner_sessions)
        self.hashed = HashedMatches(engine.profile_id, limits=hashed_limits)
        self.broker.on_resign(self.hashed.close_partner_matches)
        # With the key node's identifiers and segments, partners' values are aggregated
        # per segment (keynode.v1.Aggregates); a resignation ends the partner's sessions.
        self.aggregates = aggregates
        if aggregates is not None:
            self.broker.on_resign(aggregates.close_partner_sessions)
        self._hashed_keys = hashed_keys
        self._hasher: tuple[KeyNodeHasher, grpc.Channel] | None = None
        recovered = self.broker.recover()
        if recovered:
            log.info("completed the resignations of %s", ", ".join(recovered))
        self.authorizer = Authorizer(network, _Revocations(self.broker, crl))
        self._campaigns = campaigns
        self._server: KeynodeServer | None = None

    def sessions(self) -> Sequence[tuple[str, str, str, float]]:
        psi = [(sid, partner, "psi", age) for sid, partner, age in self.engine.open_sessions()]
        hashed = [(mid, partner, "hashed", age) for mid, partner, age in self.hashed.open_matches()]
        aggregate = [
            (sid, partner, "aggregate", age)
            for sid, partner, age in (self.aggregates.open_sessions() if self.aggregates else [])
        ]
        return psi + hashed + aggregate

    def start(self, listen: str, cert_dir: Path, *, settings: ServerSettings | None = None) -> int:
        """Serve on ``listen`` with the key node's certificate; returns the bound port."""
        built = build_server(
            listen,
            credentials=tls.server_credentials(cert_dir),
            services=[BROKER_SERVICE, MATCHING_SERVICE, HASHED_SERVICE, AUDIT_SERVICE]
            + ([AGGREGATES_SERVICE] if self.aggregates is not None else []),
            settings=settings,
        )
        extra = {"campaigns": self._campaigns} if self._campaigns else {}
        add_broker(
            built.server,
            BrokerServicer(self.broker, self.authorizer, sessions=self.sessions, **extra),
        )
        add_matching(
            built.server,
            MatchingServicer(self.engine, authorizer=self.authorizer, gate=self.broker),
        )
        audit_pb2_grpc.add_AuditLogServicer_to_server(
            AuditLogServicer(self.policy_log.store, authorizer=self.authorizer), built.server
        )
        add_hashed(built.server, HashedOverlapServicer(self.hashed, self.broker, self.authorizer))
        if self.aggregates is not None:
            add_aggregates(
                built.server,
                AggregatesServicer(self.aggregates, authorizer=self.authorizer, gate=self.broker),
            )
        built.start()
        self._server = built
        if self._hashed_keys is not None:
            self._start_hasher(listen, built.port, cert_dir)
        log.info("key node %s serving on port %d", self.network, built.port)
        return built.port

    def _start_hasher(self, listen: str, port: int, cert_dir: Path) -> None:
        """Start the hasher on a loopback channel and wait until the broker knows its key."""
        assert self._hashed_keys is not None
        host = listen.rpartition(":")[0]
        if host in ("", "0.0.0.0", "[::]", "::"):
            host = "127.0.0.1"
        certificate = pki.read_certificate(cert_dir / pki.TLS_CERT)
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        dns = names.value.get_values_for_type(x509.DNSName)
        channel = tls.open_channel(f"{host}:{port}", cert_dir, server_name=dns[0] if dns else None)
        hasher = KeyNodeHasher(channel, self._hashed_keys, X25519PrivateKey.generate())
        hasher.start()
        self._hasher = (hasher, channel)
        if not self.hashed.wait_for_hasher(HASHER_START_S):
            log.warning("the hashed-overlap hasher has not registered within %gs", HASHER_START_S)

    def stop(self, grace_s: float | None = 2.0) -> None:
        if self._hasher is not None:
            hasher, channel = self._hasher
            hasher.stop()
            channel.close()
            self._hasher = None
        if self._server is not None:
            self._server.stop(grace_s)
            self._server = None
        self.policy_log.close()
