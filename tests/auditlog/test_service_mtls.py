"""The AuditLog service over real mTLS: auditors and operators read, partners may not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from auditlog_support import Network

from keynode import pki
from keynode.auditlog import NoteVerifier, PolicyLog, verify_log
from keynode.auditlog_service import AuditClient, serve_audit
from keynode.errors import InputError, PolicyDenied, Unavailable
from keynode.policy import default_policy
from keynode.transport.auth import Authorizer
from keynode.transport.tls import open_channel, server_credentials


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pki")
    pki.init_ca("retail", root / "ca")
    pki.issue(
        root / "ca",
        pki.KEY_NODE,
        "retailer",
        root / "key-node",
        dns_names=["localhost"],
        ips=["127.0.0.1"],
    )
    for role, party in [(pki.AUDITOR, "aude"), (pki.OPERATOR, "olga"), (pki.PARTNER, "bank")]:
        pki.issue(root / "ca", role, party, root / party)
    return root


@pytest.fixture
def target(certs: Path, network: Network, log: PolicyLog) -> Iterator[str]:
    network.story()
    ca = pki.read_certificate(certs / "ca" / pki.CA_CERT)
    authorizer = Authorizer("retail", pki.CrlFile(certs / "ca" / pki.CRL, ca))
    server = serve_audit(
        log.store, "127.0.0.1:0", server_credentials(certs / "key-node"), authorizer=authorizer
    )
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        server.stop(grace=None)


@pytest.mark.parametrize("reader", ["aude", "olga"])
def test_auditors_and_operators_verify_over_mtls(
    certs: Path, target: str, reader: str, verifier: NoteVerifier, log: PolicyLog
) -> None:
    policy = default_policy()
    with open_channel(target, certs / reader) as channel:
        verdict = verify_log(AuditClient(channel, target), verifier, {policy.hash: policy})
    assert verdict.checkpoint.size == log.size()


def test_partners_may_not_read_the_log(certs: Path, target: str) -> None:
    with open_channel(target, certs / "bank") as channel, pytest.raises(PolicyDenied):
        AuditClient(channel, target).latest_checkpoint()


def test_plaintext_clients_are_refused(target: str) -> None:
    with grpc.insecure_channel(target) as channel, pytest.raises(Unavailable):
        AuditClient(channel, target).latest_checkpoint()


def test_mtls_without_an_authorizer_is_refused(certs: Path, log: PolicyLog) -> None:
    with pytest.raises(InputError):
        serve_audit(log.store, "127.0.0.1:0", server_credentials(certs / "key-node"))
