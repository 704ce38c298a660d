"""Short-lived signed grants: the broker's permission slip for one session.

A grant names the partner, the operation, the level, the limits, when it was issued and
when it expires, a random 128-bit nonce (its id) and the hash of the policy it was
decided under. The broker signs it with Ed25519 only for an allowed
:class:`~keynode.policy.decision.Decision`; the matching service checks it with a
:class:`GrantVerifier`, then a :class:`RevocationList`, then spends it once with a
:class:`ReplayGuard`. Every check failure is the same opaque "invalid grant" to the
peer; the reason is logged server-side.

Token: ``base64url(payload) "." base64url(signature)``, the payload being canonical JSON
and the signature covering ``b"keynode-grant-v1\\n" + payload`` (domain separation).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from keynode.errors import InputError, VerificationError
from keynode.policy.decision import Decision, GrantTerms, Standing, grant_terms
from keynode.policy.model import TOKEN, Policy

log = logging.getLogger(__name__)

Clock = Callable[[], int]
"""Returns the current time in integer milliseconds since the Unix epoch."""
Rng = Callable[[int], bytes]

_DOMAIN = b"keynode-grant-v1\n"
_MAX_TOKEN = 4096


def system_clock_ms() -> int:
    """Wall-clock time in milliseconds."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Grant(GrantTerms):
    """A grant's full content: the terms plus the policy and signing key it came from."""

    policy_hash: str
    key_id: str

    def payload(self) -> bytes:
        """The canonical JSON that is signed."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class SignedGrant:
    """A grant and its token (what the partner presents to the matching service)."""

    grant: Grant
    token: bytes

    @property
    def token_hash(self) -> str:
        """SHA-256 of the token, hex: what the policy log records."""
        return hashlib.sha256(self.token).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class GrantSigner:
    """The broker's grant key. Issues grants only for allowed decisions."""

    def __init__(
        self,
        key: Ed25519PrivateKey,
        key_id: str,
        *,
        clock: Clock = system_clock_ms,
        rng: Rng = os.urandom,
    ) -> None:
        if not TOKEN.fullmatch(key_id):
            raise InputError(f"invalid grant key id {key_id!r}")
        self._key = key
        self.key_id = key_id
        self._clock = clock
        self._rng = rng

    def public_key(self) -> Ed25519PublicKey:
        """The key the matching service verifies grants with."""
        return self._key.public_key()

    def issue(self, decision: Decision, policy: Policy, standing: Standing) -> SignedGrant:
        """Sign a grant for an allowed decision; raise PolicyDenied/LimitExceeded otherwise."""
        decision.check()
        if standing.partner != decision.partner:
            raise InputError("decision and standing name different partners")
        terms = grant_terms(
            policy,
            standing,
            decision.operation,
            grant_id=self._rng(16).hex(),
            now_ms=self._clock(),
        )
        grant = Grant(**asdict(terms), policy_hash=policy.hash, key_id=self.key_id)
        payload = grant.payload()
        signature = self._key.sign(_DOMAIN + payload)
        return SignedGrant(grant, f"{_b64(payload)}.{_b64(signature)}".encode())


class GrantVerifier:
    """Checks a grant token: signature by a known key, well-formed, unexpired."""

    def __init__(
        self,
        keys: Mapping[str, Ed25519PublicKey],
        *,
        clock: Clock = system_clock_ms,
        skew_ms: int = 5000,
    ) -> None:
        """``keys``: grant key id -> public key; ``skew_ms``: how far the issuer's clock
        may run ahead of ours (a grant issued "in the future" by less is accepted)."""
        self._keys = dict(keys)
        self._clock = clock
        self._skew_ms = skew_ms

    def verify(self, token: bytes, *, partner: str | None = None) -> Grant:
        """The verified grant; raise an opaque VerificationError if anything is wrong.

        ``partner``: when given (the caller's authenticated identity), the grant must
        name it — a partner cannot use another partner's grant.
        """
        try:
            grant = self._parse(token)
            now = self._clock()
            if not grant.issued_ms - self._skew_ms <= now < grant.expires_ms:
                raise ValueError("expired or not yet valid")
            if partner is not None and grant.partner != partner:
                raise ValueError("grant is for another partner")
        except (ValueError, TypeError, KeyError, binascii.Error, InvalidSignature) as exc:
            log.info("grant refused: %s", exc)
            raise VerificationError("invalid grant") from None
        return grant

    def _parse(self, token: bytes) -> Grant:
        if len(token) > _MAX_TOKEN:
            raise ValueError("token too long")
        payload_b64, _, signature_b64 = token.decode("ascii").partition(".")
        payload = _unb64(payload_b64)
        fields = json.loads(payload)
        if not isinstance(fields, dict):
            raise ValueError("payload is not an object")
        key = self._keys.get(fields.get("key_id", ""))
        if key is None:
            raise ValueError("unknown grant key")
        key.verify(_unb64(signature_b64), _DOMAIN + payload)
        grant = Grant(**fields)
        if grant.payload() != payload:
            raise ValueError("payload is not canonical")
        return grant


class RevocationList:
    """Revoked grants: one by one, or every grant of a partner issued up to a time."""

    def __init__(self) -> None:
        self._grants: set[str] = set()
        self._partners: dict[str, int] = {}

    def revoke(self, grant_id: str) -> None:
        """Revoke one grant."""
        self._grants.add(grant_id)

    def revoke_partner(self, partner: str, at_ms: int) -> None:
        """Revoke every grant of ``partner`` issued at or before ``at_ms`` (resignation)."""
        self._partners[partner] = max(at_ms, self._partners.get(partner, at_ms))

    def is_revoked(self, grant: GrantTerms) -> bool:
        """Whether ``grant`` has been revoked."""
        cutoff = self._partners.get(grant.partner)
        return grant.grant_id in self._grants or (cutoff is not None and grant.issued_ms <= cutoff)

    def check(self, grant: GrantTerms) -> None:
        """Raise an opaque VerificationError if ``grant`` is revoked."""
        if self.is_revoked(grant):
            log.info("grant refused: %s is revoked", grant.grant_id)
            raise VerificationError("invalid grant")


class ReplayGuard:
    """Each grant opens one session: remembers spent grant ids until they expire."""

    def __init__(self, *, clock: Clock = system_clock_ms) -> None:
        self._clock = clock
        self._spent: dict[str, int] = {}
        self._prune_at = 1024

    def __len__(self) -> int:
        """How many spent grants are remembered (live ones, plus expired not yet pruned)."""
        return len(self._spent)

    def spend(self, grant: GrantTerms) -> None:
        """Mark ``grant`` used; raise an opaque VerificationError if it was used before."""
        if len(self._spent) >= self._prune_at:  # amortised: memory stays ~2x live grants
            now = self._clock()
            self._spent = {g: expiry for g, expiry in self._spent.items() if expiry > now}
            self._prune_at = max(1024, 2 * len(self._spent))
        if grant.grant_id in self._spent:
            log.info("grant refused: %s replayed", grant.grant_id)
            raise VerificationError("invalid grant")
        self._spent[grant.grant_id] = grant.expires_ms
