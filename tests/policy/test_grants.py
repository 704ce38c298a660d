"""Signed grants: exact tokens with injected clock and nonce; every refusal opaque."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keynode.errors import InputError, PolicyDenied, VerificationError
from keynode.policy import (
    Decision,
    GrantSigner,
    GrantVerifier,
    Reason,
    ReplayGuard,
    RevocationList,
    SignedGrant,
    Standing,
    default_policy,
)

POLICY = default_policy()
NOW = 1_763_900_000_000
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
STANDING = Standing("bank", 2)
ALLOWED = Decision(True, "bank", "overlap.size")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def signed(clock: Clock) -> SignedGrant:
    signer = GrantSigner(KEY, "broker-1", clock=clock, rng=lambda n: bytes(range(n)))
    return signer.issue(ALLOWED, POLICY, STANDING)


@pytest.fixture
def verifier(clock: Clock) -> GrantVerifier:
    return GrantVerifier({"broker-1": KEY.public_key()}, clock=clock)


def test_grant_content_is_exact(signed: SignedGrant) -> None:
    grant = signed.grant
    assert grant.grant_id == bytes(range(16)).hex()
    assert (grant.partner, grant.operation, grant.level) == ("bank", "overlap.size", 2)
    assert (grant.issued_ms, grant.expires_ms) == (NOW, NOW + POLICY.limits.grant_ttl_ms)
    assert (grant.min_cohort, grant.max_set_size) == (
        POLICY.limits.min_cohort,
        POLICY.limits.max_set_size,
    )
    assert grant.policy_hash == POLICY.hash
    payload, signature = signed.token.split(b".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
    assert (
        decoded["grant_id"] == grant.grant_id
        and len(base64.urlsafe_b64decode(signature + b"==")) == 64
    )


def test_issuing_is_deterministic_with_injected_clock_and_nonce(
    clock: Clock, signed: SignedGrant
) -> None:
    again = GrantSigner(KEY, "broker-1", clock=clock, rng=lambda n: bytes(range(n))).issue(
        ALLOWED, POLICY, STANDING
    )
    assert again.token == signed.token


def test_verify_round_trip(signed: SignedGrant, verifier: GrantVerifier, clock: Clock) -> None:
    assert verifier.verify(signed.token, partner="bank") == signed.grant
    clock.now = NOW - 5000  # the issuer's clock may run up to 5 s ahead
    assert verifier.verify(signed.token) == signed.grant


def test_denied_decisions_cannot_be_signed() -> None:
    signer = GrantSigner(KEY, "broker-1")
    with pytest.raises(PolicyDenied):
        signer.issue(
            Decision(False, "bank", "aggregate.segment", Reason.LEVEL_TOO_LOW), POLICY, STANDING
        )
    with pytest.raises(InputError):
        signer.issue(ALLOWED, POLICY, Standing("insurer", 2))
    with pytest.raises(InputError):
        GrantSigner(KEY, "Broker One")


def _flip(token: bytes, at: int) -> bytes:
    return token[:at] + (b"A" if token[at : at + 1] != b"A" else b"B") + token[at + 1 :]


def refusals(signed: SignedGrant, clock: Clock) -> dict[str, tuple[bytes, str | None, int]]:
    other = GrantSigner(Ed25519PrivateKey.generate(), "broker-1", clock=clock).issue(
        ALLOWED, POLICY, STANDING
    )
    unknown = GrantSigner(KEY, "broker-2", clock=clock).issue(ALLOWED, POLICY, STANDING)
    payload = signed.token.split(b".")[0]
    return {
        "expired": (signed.token, None, NOW + POLICY.limits.grant_ttl_ms),
        "not yet valid": (signed.token, None, NOW - 5001),
        "another partner's grant": (signed.token, "insurer", NOW),
        "payload edited": (_flip(signed.token, 10), None, NOW),
        "signature edited": (_flip(signed.token, len(signed.token) - 5), None, NOW),
        "signed by another key": (other.token, None, NOW),
        "unknown key id": (unknown.token, None, NOW),
        "no signature": (payload, None, NOW),
        "garbage": (b"\xff\x00.", None, NOW),
        "too long": (b"A" * 5000, None, NOW),
    }


@pytest.mark.parametrize(
    "case",
    [
        "expired",
        "not yet valid",
        "another partner's grant",
        "payload edited",
        "signature edited",
        "signed by another key",
        "unknown key id",
        "no signature",
        "garbage",
        "too long",
    ],
)
def test_refusals_are_opaque(
    case: str, signed: SignedGrant, verifier: GrantVerifier, clock: Clock
) -> None:
    token, partner, now = refusals(signed, clock)[case]
    clock.now = now
    with pytest.raises(VerificationError) as caught:
        verifier.verify(token, partner=partner)
    assert str(caught.value) == "invalid grant"


def test_revocation_of_one_grant_and_of_a_partner(signed: SignedGrant, clock: Clock) -> None:
    revocations = RevocationList()
    revocations.check(signed.grant)
    revocations.revoke(signed.grant.grant_id)
    with pytest.raises(VerificationError, match=r"^invalid grant$"):
        revocations.check(signed.grant)

    by_partner = RevocationList()
    by_partner.revoke_partner("bank", NOW - 1)
    by_partner.check(signed.grant)  # issued after the cut-off
    by_partner.revoke_partner("bank", NOW)
    assert by_partner.is_revoked(signed.grant)


def test_replay_guard_spends_each_grant_once_and_forgets_expired(
    signed: SignedGrant, clock: Clock
) -> None:
    guard = ReplayGuard(clock=clock)
    guard.spend(signed.grant)
    with pytest.raises(VerificationError, match=r"^invalid grant$"):
        guard.spend(signed.grant)
    signer = GrantSigner(KEY, "broker-1", clock=clock)
    for _ in range(1500):
        guard.spend(signer.issue(ALLOWED, POLICY, STANDING).grant)
    clock.now = NOW + POLICY.limits.grant_ttl_ms  # all of those have expired now
    for _ in range(1500):
        guard.spend(signer.issue(ALLOWED, POLICY, STANDING).grant)
    assert len(guard) < 1500 + 1  # the expired ones were forgotten on the way
