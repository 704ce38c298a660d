"""The broker's decision core: levels, grants, releases, leases and resignation.

Every decision follows one path: decide with :mod:`keynode.policy` (the same functions
the auditor's replay calls), append the entry to the policy log (durable), apply it to
the broker's state, and only then let it take effect. The state is a
:class:`~keynode.auditlog.replay.PolicyReplay` over the broker's own log: at start-up
the broker replays the log, so what it decides from is exactly what an auditor
re-derives, and a decision logged just before a crash is completed by
:meth:`Broker.recover`.

No gRPC here; :mod:`keynode.broker.service` translates calls.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from keynode import pki
from keynode.auditlog import PolicyLog, PolicyReplay, decode_entry, records
from keynode.auditlog.entries import Entry
from keynode.broker import audience
from keynode.broker.store import BrokerStore, Lease
from keynode.errors import InputError, NotFound, PolicyDenied, VerificationError
from keynode.policy import (
    Grant,
    GrantSigner,
    GrantVerifier,
    Policy,
    SignedGrant,
    Standing,
    UsageLedger,
    decide_grant,
    decide_release,
    load_policy,
    system_clock_ms,
)
from keynode.policy.model import TOKEN

log = logging.getLogger(__name__)

#: key_id logged for a key kind the partner never had (nothing to destroy).
NO_KEY = "0" * 64
TOKEN_KEY = "token_key"
LEASE_KEY = "lease_key"
AUDIENCE_OPERATION = "audience.lease"
LEASE_TTL_MS = 7 * 24 * 3600 * 1000


class KeyHolder(Protocol):
    """Something that keeps a per-partner secret key the broker must be able to destroy."""

    def key_id(self, partner: str) -> str | None:
        """A 64-hex-digit id of the partner's current key (never the key), or None."""
        ...

    def destroy(self, partner: str) -> object:
        """Forget the partner's key for good (idempotent)."""
        ...


class AudienceDirectory(Protocol):
    """The key node's segments: which members each contains (refs, never identifiers)."""

    def segments(self) -> list[str]: ...

    def members(self, segment: str) -> list[str]: ...


@dataclass(frozen=True)
class Resignation:
    partner: str
    destroyed_keys: tuple[str, ...]
    sessions_ended: int


@dataclass(frozen=True)
class AudienceLease:
    handle: str
    expires_ms: int
    tokens: list[bytes]


def identity_hash(certificate: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER: what the log records at enrolment."""
    return hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"keynode-key-id\x00" + key).hexdigest()


class _StoredKeys:
    """A per-partner symmetric key kind kept in the broker store."""

    def __init__(self, store: BrokerStore, kind: str) -> None:
        self._store, self._kind = store, kind

    def get(self, partner: str) -> bytes:
        return self._store.create_partner_key(partner, self._kind, secrets.token_bytes(32))

    def key_id(self, partner: str) -> str | None:
        key = self._store.partner_key(partner, self._kind)
        return _key_id(key) if key is not None else None

    def destroy(self, partner: str) -> None:
        self._store.delete_partner_key(partner, self._kind)


class Broker:
    """Decides, logs and enforces. Thread-safe: decisions are serialised."""

    def __init__(
        self,
        policy_log: PolicyLog,
        store: BrokerStore,
        signer: GrantSigner,
        *,
        clock: Callable[[], int] = system_clock_ms,
        directory: AudienceDirectory | None = None,
        actor: str = "broker",
    ) -> None:
        self._log = policy_log
        self._store = store
        self._signer = signer
        self._clock = clock
        self._directory = directory
        self.actor = actor
        self._lock = threading.RLock()
        self._policies: dict[str, tuple[Policy, bytes]] = {}
        for body in store.policies().values():
            policy = load_policy(body)
            self._policies[policy.hash] = (policy, body)
        self._state = self._replay_log()
        self.verifier = GrantVerifier({signer.key_id: signer.public_key()}, clock=self.now_ms)
        self._token_keys = _StoredKeys(store, TOKEN_KEY)
        self._lease_keys = _StoredKeys(store, LEASE_KEY)
        self._holders: dict[str, KeyHolder] = {
            TOKEN_KEY: self._token_keys,
            LEASE_KEY: self._lease_keys,
        }
        self._on_resign: list[Callable[[str], int]] = []

    # -- wiring ------------------------------------------------------------------------

    def attach_key_holder(self, kind: str, holder: KeyHolder) -> None:
        """Make ``holder``'s per-partner keys part of every resignation (e.g. ECDH scalars)."""
        self._holders[kind] = holder

    def on_resign(self, callback: Callable[[str], int]) -> None:
        """Call ``callback(partner)`` on resignation (end sessions, delete uploads); it
        returns how many sessions it ended."""
        self._on_resign.append(callback)

    def now_ms(self) -> int:
        """The broker's clock, never behind the last logged entry."""
        return max(self._clock(), self._state.now_ms)

    # -- reading -----------------------------------------------------------------------

    @property
    def policy(self) -> Policy | None:
        return self._state.policy

    def policy_body(self) -> bytes | None:
        policy = self._state.policy
        return self._policies[policy.hash][1] if policy else None

    def standing(self, partner: str) -> Standing:
        return self._state.standing(partner)

    def partners(self) -> list[Standing]:
        return [self._state.standing(p) for p in self._state.partners()]

    def allowed_operations(self, partner: str) -> list[str]:
        policy, standing = self._state.policy, self._state.standing(partner)
        if policy is None or standing.level is None or standing.resigned:
            return []
        return policy.capability_matrix()[standing.level]

    def segments(self) -> list[str]:
        return self._directory.segments() if self._directory else []

    # -- logging ------------------------------------------------------------------------

    def _append(self, *entries: Entry) -> None:
        """Durably log entries, then apply them to the state (caller holds the lock)."""
        receipts = self._log.append_all(entries)
        for receipt, entry in zip(receipts, entries, strict=True):
            self._state.apply(receipt.index, entry)

    def _refuse(self, partner: str, operation: str, reason: str) -> None:
        self._append(
            records.refused(partner, operation, reason, actor=self.actor, now_ms=self.now_ms())
        )

    def _require_policy(self) -> Policy:
        policy = self._state.policy
        if policy is None:
            raise PolicyDenied("no policy is loaded: everything is denied")
        return policy

    # -- operator decisions -------------------------------------------------------------

    def load_policy(self, body: bytes, *, actor: str) -> Policy:
        """Validate and load a policy file (stored, then logged by hash)."""
        policy = load_policy(body)
        with self._lock:
            self._store.save_policy(policy.hash, body)
            self._policies[policy.hash] = (policy, body)
            self._state = self._replay_log()  # the replay learns policies up front
            self._append(records.policy_loaded(policy, actor=actor, now_ms=self.now_ms()))
        log.info("policy %s (%s) loaded by %s", policy.version, policy.hash[:12], actor)
        return policy

    def _replay_log(self) -> PolicyReplay:
        """The state re-derived from the whole log, knowing every stored policy."""
        state = PolicyReplay({h: p for h, (p, _) in self._policies.items()})
        for index, body in enumerate(self._log.entries(0, self._log.size())):
            state.apply(index, decode_entry(body))
        return state

    def enrol(self, partner: str, certificate: x509.Certificate, *, actor: str) -> Standing:
        """Admit ``partner`` at level 1 with the given certificate (role partner, itself)."""
        identity = pki.parse_identity(certificate)
        if identity.role != pki.PARTNER or identity.party != partner:
            raise InputError(f"the certificate is for {identity.role} {identity.party!r}")
        if not TOKEN.fullmatch(partner):
            raise InputError(f"invalid partner name {partner!r}")
        with self._lock:
            self._require_policy()
            standing = self._state.standing(partner)
            if standing.level is not None and not standing.resigned:
                raise InputError(f"{partner} is already enrolled (level {standing.level})")
            if self._store.is_serial_revoked(identity.serial):
                raise VerificationError("this certificate has been revoked; issue a new one")
            # Storing the certificate first is harmless: it grants nothing until logged.
            digest = identity_hash(certificate)
            self._store.set_certificate(partner, identity.serial, digest)
            self._append(records.enrolled(partner, digest, actor=actor, now_ms=self.now_ms()))
            return self._state.standing(partner)

    def set_level(self, partner: str, level: int, *, actor: str) -> Standing:
        with self._lock:
            policy = self._require_policy()
            standing = self._state.standing(partner)
            if standing.level is None or standing.resigned:
                raise NotFound(f"{partner} is not an enrolled partner")
            if level not in policy.levels:
                raise InputError(f"level must be one of {sorted(policy.levels)}")
            if level != standing.level:
                entry = records.level_changed(
                    partner, standing.level, level, actor=actor, now_ms=self.now_ms()
                )
                self._append(entry)
            return self._state.standing(partner)

    # -- partner identity ------------------------------------------------------------------

    def is_revoked(self, peer: pki.PeerIdentity) -> bool:
        """RevocationSource for the transport: resigned partners' certificates are revoked."""
        return self._store.is_serial_revoked(peer.serial)

    def check_enrolled_certificate(self, peer: pki.PeerIdentity) -> None:
        """A partner may call only with the certificate it was enrolled with."""
        enrolled = self._store.certificate(peer.party)
        if enrolled is None or enrolled[0] != peer.serial:
            raise PolicyDenied(f"{peer.party} is not enrolled with this certificate")

    # -- grants and releases -----------------------------------------------------------------

    def request_grant(
        self, partner: str, operation: str, *, set_size: int | None = None
    ) -> SignedGrant:
        """Decide, log, and sign a grant; a refusal is logged and raised."""
        with self._lock:
            policy = self._state.policy
            standing = self._state.standing(partner)
            decision = decide_grant(
                policy,
                standing,
                operation,
                now_ms=self.now_ms(),
                usage=self._state.usage,
                set_size=set_size,
            )
            if not decision.allowed:
                self._refuse(partner, _token_or(operation), str(decision.reason))
                decision.check()
            assert policy is not None
            signed = self._signer.issue(decision, policy, standing)
            self._append(records.granted(signed, actor=self.actor))
            return signed

    def admit(self, token: bytes, partner: str, operation: str) -> Grant:
        """Check a presented grant for ``operation`` by ``partner`` and spend it (one use).

        Any failure is logged as a refusal and raised as an opaque error.
        """
        with self._lock:
            try:
                grant = self.verifier.verify(token, partner=partner)
                self._state.revocations.check(grant)
                if grant.operation != operation:
                    raise VerificationError("invalid grant")
                if not self._store.spend_grant(grant.grant_id, grant.expires_ms, self.now_ms()):
                    raise VerificationError("invalid grant")
            except VerificationError:
                self._refuse(partner, _token_or(operation), "invalid_grant")
                raise
            return grant

    def release(
        self, grant: Grant, *, input_count: int, released_count: int, params: bytes
    ) -> None:
        """Log a release under ``grant`` if the policy allows it now; else log and raise.

        ``params`` (hashed, never logged) describes what is released, e.g. the session.
        """
        with self._lock:
            standing = self._state.standing(grant.partner)
            now = self.now_ms()
            decision = decide_release(
                self._state.policy,
                standing,
                grant,
                grant.operation,
                now_ms=now,
                usage=self._state.usage,
                input_count=input_count,
                released_count=released_count,
            )
            if not decision.allowed or self._state.revocations.is_revoked(grant):
                reason = str(decision.reason) if decision.reason else "grant_revoked"
                self._refuse(grant.partner, grant.operation, reason)
                if decision.allowed:
                    raise VerificationError("invalid grant")
                decision.check()
            entry = records.released(
                grant,
                input_count=input_count,
                released_count=released_count,
                params_hash=hashlib.sha256(params).hexdigest(),
                actor=self.actor,
                now_ms=now,
            )
            self._append(entry)

    # -- audience leases (level 4) -----------------------------------------------------------

    def lease_audience(self, token: bytes, partner: str, segment: str) -> AudienceLease:
        """Lease a segment's audience as opaque tokens (grant ``audience.lease``)."""
        grant = self.admit(token, partner, AUDIENCE_OPERATION)
        if self._directory is None or segment not in self._directory.segments():
            raise NotFound(f"no agreed segment {segment!r}")
        members = self._directory.members(segment)
        lease_id = secrets.token_hex(16)
        self.release(
            grant,
            input_count=len(members),
            released_count=len(members),
            params=f"audience\x00{segment}\x00{lease_id}".encode(),
        )
        expires = self.now_ms() + LEASE_TTL_MS
        self._store.add_lease(Lease(lease_id, partner, segment, expires))
        return AudienceLease(
            handle=audience.lease_handle(self._lease_keys.get(partner), lease_id, partner, expires),
            expires_ms=expires,
            tokens=audience.tokens_for(self._token_keys.get(partner), lease_id, members),
        )

    def resolve_audience(self, partner: str, handle: str, tokens: Sequence[bytes]) -> list[str]:
        """Members behind ``tokens`` for a campaign; only the lease's partner, before expiry."""
        lease = self._store.lease(audience.lease_id_of(handle))
        if lease is None or lease.partner != partner or lease.expires_ms <= self.now_ms():
            raise VerificationError("invalid lease")
        lease_key = self._store.partner_key(partner, LEASE_KEY)
        token_key = self._store.partner_key(partner, TOKEN_KEY)
        if lease_key is None or token_key is None or self._directory is None:
            raise VerificationError("invalid lease")
        lease_id = audience.open_handle(lease_key, handle, partner, lease.expires_ms)
        return audience.resolve(token_key, lease_id, self._directory.members(lease.segment), tokens)

    # -- resignation -----------------------------------------------------------------------

    def resign(self, partner: str, reason: str, *, actor: str) -> Resignation:
        """Make a resignation final: log it with every key destruction, then carry it out."""
        if not TOKEN.fullmatch(reason):
            raise InputError("the reason must be a short lowercase token, e.g. contract-ended")
        with self._lock:
            policy = self._require_policy()
            standing = self._state.standing(partner)
            if standing.level is None or standing.resigned:
                raise NotFound(f"{partner} is not an enrolled partner")
            now = self.now_ms()
            entries = [records.resigned(partner, reason, actor=actor, now_ms=now)]
            for kind in policy.destroy_keys:
                holder = self._holders.get(kind)
                key_id = (holder.key_id(partner) if holder else None) or NO_KEY
                entries.append(
                    records.key_destroyed(partner, kind, key_id, actor=actor, now_ms=now)
                )
            self._append(*entries)  # one atomic batch: never a resignation without them
            ended = self._carry_out_resignation(partner)
        log.info("%s resigned (%s); keys destroyed: %s", partner, reason, policy.destroy_keys)
        return Resignation(partner, policy.destroy_keys, ended)

    def _carry_out_resignation(self, partner: str) -> int:
        """The effects of a logged resignation; idempotent, so recovery can repeat them."""
        for holder in self._holders.values():
            holder.destroy(partner)
        self._store.delete_partner_leases(partner)
        enrolled = self._store.certificate(partner)
        if enrolled is not None:
            self._store.revoke_serial(partner, enrolled[0])
        return sum(callback(partner) for callback in self._on_resign)

    def recover(self) -> list[str]:
        """Complete the effects of every logged resignation (after a crash); returns them."""
        with self._lock:
            done = [s.partner for s in self.partners() if s.resigned]
            for partner in done:
                self._carry_out_resignation(partner)
        return done

    def usage(self) -> UsageLedger:
        return self._state.usage


def _token_or(operation: str) -> str:
    """Operation names go into the log only as tokens; anything else is logged as unknown."""
    return operation if TOKEN.fullmatch(operation) else "unknown"
