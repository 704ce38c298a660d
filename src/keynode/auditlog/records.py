"""Entry builders for the broker: one function per decision, from the policy objects.

They keep the broker from assembling parameter dicts by hand and make the entries
line up with what :mod:`keynode.auditlog.replay` expects (a grant is logged at its
issue time, with its expiry, level and token hash, for example).
"""

from __future__ import annotations

from keynode.auditlog.entries import Entry, EntryType
from keynode.policy import GrantTerms, Policy, SignedGrant


def policy_loaded(policy: Policy, *, actor: str, now_ms: int) -> Entry:
    """The operator loaded ``policy`` (recorded by its file hash and version)."""
    params = {"policy_hash": policy.hash, "policy_version": policy.version}
    return Entry(EntryType.POLICY_LOAD, now_ms, actor, "", params)


def enrolled(partner: str, identity_hash: str, *, actor: str, now_ms: int) -> Entry:
    """``partner`` joined at level 1; ``identity_hash``: SHA-256 of its certificate."""
    return Entry(EntryType.ENROL, now_ms, actor, partner, {"identity_hash": identity_hash})


def level_changed(partner: str, old: int, new: int, *, actor: str, now_ms: int) -> Entry:
    """``partner`` moved from level ``old`` to ``new``."""
    params = {"from_level": old, "to_level": new}
    return Entry(EntryType.LEVEL_CHANGE, now_ms, actor, partner, params)


def granted(signed: SignedGrant, *, actor: str) -> Entry:
    """A grant was issued (logged at its issue time, before it is handed out)."""
    grant = signed.grant
    params: dict[str, int | str] = {
        "grant_id": grant.grant_id,
        "operation": grant.operation,
        "level": grant.level,
        "expires_ms": grant.expires_ms,
        "grant_hash": signed.token_hash,
    }
    return Entry(EntryType.GRANT, grant.issued_ms, actor, grant.partner, params)


def refused(partner: str, operation: str, reason: str, *, actor: str, now_ms: int) -> Entry:
    """A request was refused; ``reason`` is a :class:`~keynode.policy.Reason` token."""
    params = {"operation": operation, "reason": reason}
    return Entry(EntryType.REFUSAL, now_ms, actor, partner, params)


def released(
    grant: GrantTerms,
    *,
    input_count: int,
    released_count: int,
    params_hash: str,
    actor: str,
    now_ms: int,
) -> Entry:
    """A result left the key node under ``grant``: counts and a hash of its parameters."""
    params: dict[str, int | str] = {
        "grant_id": grant.grant_id,
        "operation": grant.operation,
        "input_count": input_count,
        "released_count": released_count,
        "params_hash": params_hash,
    }
    return Entry(EntryType.RELEASE, now_ms, actor, grant.partner, params)


def revoked(grant: GrantTerms, reason: str, *, actor: str, now_ms: int) -> Entry:
    """One grant was revoked before its expiry."""
    params = {"grant_id": grant.grant_id, "reason": reason}
    return Entry(EntryType.REVOCATION, now_ms, actor, grant.partner, params)


def resigned(partner: str, reason: str, *, actor: str, now_ms: int) -> Entry:
    """``partner`` resigned: its grants end now and its keys must be destroyed."""
    return Entry(EntryType.RESIGNATION, now_ms, actor, partner, {"reason": reason})


def key_destroyed(partner: str, key_kind: str, key_id: str, *, actor: str, now_ms: int) -> Entry:
    """A per-partner key of ``key_kind`` (policy ``resignation.destroy_keys``) was destroyed."""
    params = {"key_kind": key_kind, "key_id": key_id}
    return Entry(EntryType.KEY_DESTRUCTION, now_ms, actor, partner, params)
