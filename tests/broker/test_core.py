"""The broker's decision core without transport: rules, expiry, recovery after a crash."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keynode import pki
from keynode.auditlog import NoteSigner, NoteVerifier, PolicyLog, verify_log
from keynode.auditlog.store import LogStore
from keynode.broker.core import Broker
from keynode.broker.store import BrokerStore
from keynode.errors import InputError, LimitExceeded, NotFound, PolicyDenied, VerificationError
from keynode.policy import GrantSigner, default_policy, default_policy_bytes
from keynode.storage import open_database

PARTNERS = ("bank", "insurer", "telco")
POLICY = default_policy()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, x509.Certificate]:
    root = tmp_path_factory.mktemp("pki")
    pki.init_ca("testnet", root / "ca")
    return {p: pki.issue(root / "ca", pki.PARTNER, p, root / p) for p in PARTNERS}


class Clock:
    def __init__(self) -> None:
        self.ms = 1_800_000_000_000

    def __call__(self) -> int:
        return self.ms


def _log_signer() -> NoteSigner:
    key = Ed25519PrivateKey.from_private_bytes(b"\x01" * 32)
    return NoteSigner("keynode.testnet/policy-log", key)


def _broker(target: str, clock: Clock | None = None) -> Broker:
    db = open_database(target)
    signer = _log_signer()
    grant_key = Ed25519PrivateKey.from_private_bytes(b"\x02" * 32)
    clock = clock or Clock()
    return Broker(
        PolicyLog(LogStore(db, signer.name), signer),
        BrokerStore(db),
        GrantSigner(grant_key, "grant-test", clock=clock),
        clock=clock,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def broker(tmp_path: Path, clock: Clock) -> Iterator[Broker]:
    b = _broker(str(tmp_path / "broker.db"), clock)
    b.load_policy(default_policy_bytes(), actor="olga")
    yield b


def test_expired_grant_is_refused_and_logged(
    broker: Broker, clock: Clock, certs: dict[str, x509.Certificate]
) -> None:
    broker.enrol("bank", certs["bank"], actor="olga")
    broker.set_level("bank", 2, actor="olga")
    token = broker.request_grant("bank", "overlap.size").token
    clock.ms += POLICY.limits.grant_ttl_ms
    with pytest.raises(VerificationError, match=r"^invalid grant$"):
        broker.admit(token, "bank", "overlap.size")
    assert broker._log.size() == 5  # policy, enrol, level, grant, refusal


def test_grant_of_another_partner_is_refused(
    broker: Broker, certs: dict[str, x509.Certificate]
) -> None:
    for partner in ("bank", "insurer"):
        broker.enrol(partner, certs[partner], actor="olga")
        broker.set_level(partner, 2, actor="olga")
    token = broker.request_grant("bank", "overlap.size").token
    with pytest.raises(VerificationError):
        broker.admit(token, "insurer", "overlap.size")


def test_rate_limit_refuses_with_resource_exhausted(
    broker: Broker, certs: dict[str, x509.Certificate]
) -> None:
    broker.enrol("bank", certs["bank"], actor="olga")
    for _ in range(POLICY.limits.rate_limit.count):
        broker.request_grant("bank", "catalogue.read")
    with pytest.raises(LimitExceeded, match="rate_limited"):
        broker.request_grant("bank", "catalogue.read")


def test_release_after_resignation_is_refused(
    broker: Broker, certs: dict[str, x509.Certificate]
) -> None:
    broker.enrol("bank", certs["bank"], actor="olga")
    broker.set_level("bank", 2, actor="olga")
    grant = broker.admit(broker.request_grant("bank", "overlap.size").token, "bank", "overlap.size")
    broker.resign("bank", "contract-ended", actor="olga")
    with pytest.raises(PolicyDenied, match="resigned"):
        broker.release(grant, input_count=100, released_count=100, params=b"x")


def test_unknown_operation_and_partner_fail_closed(
    broker: Broker, certs: dict[str, x509.Certificate]
) -> None:
    with pytest.raises(PolicyDenied, match="not_enrolled"):
        broker.request_grant("nobody", "overlap.size")
    broker.enrol("bank", certs["bank"], actor="olga")
    broker.set_level("bank", 6, actor="olga")
    with pytest.raises(PolicyDenied, match="unknown_operation"):
        broker.request_grant("bank", "export.everything")
    with pytest.raises(NotFound):
        broker.set_level("nobody", 2, actor="olga")


def test_state_is_rebuilt_from_the_log(
    tmp_path: Path, clock: Clock, certs: dict[str, x509.Certificate]
) -> None:
    target = str(tmp_path / "broker.db")
    first = _broker(target, clock)
    first.load_policy(default_policy_bytes(), actor="olga")
    first.enrol("bank", certs["bank"], actor="olga")
    first.set_level("bank", 3, actor="olga")
    again = _broker(target, clock)
    assert again.standing("bank").level == 3
    assert again.policy is not None and again.policy.hash == POLICY.hash


# -- a crash in the middle of a decision ----------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from cryptography import x509
    sys.path.insert(0, {tests!r})
    from test_core import _broker
    from keynode.policy import default_policy_bytes

    broker = _broker({target!r})
    broker.load_policy(default_policy_bytes(), actor="olga")
    cert = x509.load_pem_x509_certificate(open({cert!r}, "rb").read())
    broker.enrol("bank", cert, actor="olga")
    broker._token_keys.get("bank")
    # Die at the first effect, right after the resignation is logged.
    broker._store.delete_partner_key = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
    broker.resign("bank", "contract-ended", actor="olga")
    """
)


def test_sigkill_mid_resignation_is_completed_by_recovery(
    tmp_path: Path, certs: dict[str, x509.Certificate]
) -> None:
    target = str(tmp_path / "broker.db")
    cert_file = tmp_path / "bank.crt"
    cert_file.write_bytes(certs["bank"].public_bytes(Encoding.PEM))
    code = _CHILD.format(tests=str(Path(__file__).parent), target=target, cert=str(cert_file))
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()

    store = BrokerStore(open_database(target))
    assert store.partner_key("bank", "token_key") is not None  # the kill left it behind
    broker = _broker(target)
    assert broker.standing("bank").resigned  # ... but the log says: resigned
    assert broker.recover() == ["bank"]
    assert store.partner_key("bank", "token_key") is None
    serial = pki.parse_identity(certs["bank"]).serial
    assert store.is_serial_revoked(serial)
    # The log is whole and obeys the policy: the destructions were logged with the resignation.
    verifier = NoteVerifier(_log_signer().verifier_key)
    verdict = verify_log(broker._log.store, verifier, {POLICY.hash: POLICY})
    assert verdict.checkpoint.size == 6  # policy, enrol, resignation, three destructions


# -- every decision against the capability matrix ---------------------------------------------

ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("enrol"), st.sampled_from(PARTNERS)),
        st.tuples(st.just("level"), st.sampled_from(PARTNERS), st.integers(1, 6)),
        st.tuples(
            st.just("grant"), st.sampled_from(PARTNERS), st.sampled_from(sorted(POLICY.operations))
        ),
        st.tuples(st.just("resign"), st.sampled_from(PARTNERS)),
    ),
    max_size=25,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(actions=ACTIONS)
def test_random_lives_obey_the_capability_matrix(
    actions: list[tuple[object, ...]], certs: dict[str, x509.Certificate]
) -> None:
    broker = _broker(":memory:")
    broker.load_policy(default_policy_bytes(), actor="olga")
    level: dict[str, int | None] = dict.fromkeys(PARTNERS)
    for action in actions:
        kind, partner = action[0], str(action[1])
        enrolled = level[partner] is not None
        if kind == "enrol":
            if enrolled:
                with pytest.raises(InputError):
                    broker.enrol(partner, certs[partner], actor="olga")
            elif broker.standing(partner).resigned:
                with pytest.raises(VerificationError):  # the old certificate is revoked
                    broker.enrol(partner, certs[partner], actor="olga")
            else:
                broker.enrol(partner, certs[partner], actor="olga")
                level[partner] = 1
        elif kind == "level":
            if enrolled:
                broker.set_level(partner, int(action[2]), actor="olga")  # type: ignore[call-overload]
                level[partner] = int(action[2])  # type: ignore[call-overload]
            else:
                with pytest.raises(NotFound):
                    broker.set_level(partner, int(action[2]), actor="olga")  # type: ignore[call-overload]
        elif kind == "grant":
            operation = str(action[2])
            current = level[partner]
            if current is not None and POLICY.allows(current, operation):
                assert broker.request_grant(partner, operation).grant.level == current
            else:
                with pytest.raises(PolicyDenied):
                    broker.request_grant(partner, operation)
        else:
            if enrolled:
                broker.resign(partner, "test", actor="olga")
                level[partner] = None
            else:
                with pytest.raises(NotFound):
                    broker.resign(partner, "test", actor="olga")
        assert broker.standing(partner).level == level[partner] or broker.standing(partner).resigned


@pytest.mark.postgres
def test_broker_on_postgresql_resumes_from_its_log(
    postgres_dsn: str, certs: dict[str, x509.Certificate]
) -> None:
    first = _broker(postgres_dsn)
    first.load_policy(default_policy_bytes(), actor="olga")
    first.enrol("bank", certs["bank"], actor="olga")
    first.set_level("bank", 4, actor="olga")
    first.request_grant("bank", "audience.lease")
    first.resign("bank", "contract-ended", actor="olga")
    first._log.close()
    again = _broker(postgres_dsn)
    try:
        assert again.standing("bank").resigned
        assert again.recover() == ["bank"]
        assert again._store.is_serial_revoked(pki.parse_identity(certs["bank"]).serial)
        verifier = NoteVerifier(_log_signer().verifier_key)
        verdict = verify_log(again._log.store, verifier, {POLICY.hash: POLICY})
        assert verdict.checkpoint.size == 8
    finally:
        again._log.close()
