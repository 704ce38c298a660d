"""Replay the policy over the log: every decision must follow the rules at its time.

:class:`PolicyReplay` walks the entries in order and keeps the state a broker would
keep — the policy in force, each partner's level and enrolment, grants, revocations,
usage — and for each grant and release calls the same
:func:`~keynode.policy.decide_grant` / :func:`~keynode.policy.decide_release` that the
broker calls, so the auditor checks exactly what the broker enforces. The rules:

1. entry times never go backwards; a policy is loaded (and known to the auditor, by
   hash) before any partner entry;
2. enrolment of a partner that is not enrolled (re-enrolment after a resignation starts
   afresh at level 1: nothing from the old enrolment carries over);
3. a level change starts from the partner's current level, to a level of the policy;
4. a grant only if :func:`decide_grant` allows it then, at the partner's current level,
   with an expiry within the policy's grant lifetime;
5. a release only under a logged grant of the same partner and operation that is
   unexpired, unrevoked, unused, from the current enrolment, and that
   :func:`decide_release` allows then (level, set-size cap, cohort size k, budget);
6. nothing but refusals, revocations and key destructions for a resigned partner;
7. every key kind the policy lists is destroyed after each resignation, before the
   partner re-enrols and by the end of the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from keynode.auditlog.entries import Entry, EntryType
from keynode.errors import VerificationError
from keynode.policy import (
    GrantTerms,
    Policy,
    ReplayGuard,
    RevocationList,
    Standing,
    UsageLedger,
    decide_grant,
    decide_release,
)

_NOT_AFTER_RESIGNATION = frozenset({EntryType.LEVEL_CHANGE, EntryType.GRANT, EntryType.RELEASE})


@dataclass
class _Partner:
    level: int | None = None
    since_ms: int = 0
    resigned_at: int | None = None  # index of the resignation entry
    keys_to_destroy: set[str] = field(default_factory=set)

    def standing(self, name: str) -> Standing:
        return Standing(name, self.level, self.resigned_at is not None, self.since_ms)


class ReplayViolation(VerificationError):
    """An entry that breaks the policy; ``index`` names it."""

    def __init__(self, index: int, entry: Entry | None, why: str) -> None:
        what = f"{entry.type} of {entry.subject or 'the network'}" if entry else "end of log"
        super().__init__(f"entry {index} ({what}): {why}")
        self.index = index


class PolicyReplay:
    """The broker's decisions re-derived from the log. Feed entries in order."""

    def __init__(self, policies: Mapping[str, Policy]) -> None:
        self._policies = dict(policies)
        self.policy: Policy | None = None
        self._partners: dict[str, _Partner] = {}
        self._grants: dict[str, GrantTerms] = {}
        self._usage = UsageLedger()
        self._revoked = RevocationList()
        self._now = 0
        self._spent = ReplayGuard(clock=lambda: self._now)
        self._count = 0
        self._handlers = {
            EntryType.ENROL: self._enrol,
            EntryType.LEVEL_CHANGE: self._level_change,
            EntryType.GRANT: self._grant,
            EntryType.RELEASE: self._release,
            EntryType.REVOCATION: self._revocation,
            EntryType.RESIGNATION: self._resignation,
            EntryType.KEY_DESTRUCTION: self._key_destruction,
        }

    def apply(self, index: int, entry: Entry) -> None:
        """Check one entry against the rules; raise ReplayViolation naming it."""
        if index != self._count:
            raise ReplayViolation(index, entry, f"expected entry {self._count} next")
        if entry.time_ms < self._now:
            raise ReplayViolation(index, entry, "time goes backwards")
        self._now = entry.time_ms
        why = self._apply(index, entry)
        if why:
            raise ReplayViolation(index, entry, why)
        self._count += 1

    def finish(self) -> None:
        """Check what must hold at the end of the log (key destructions after resignations)."""
        for name, partner in sorted(self._partners.items()):
            if partner.keys_to_destroy and partner.resigned_at is not None:
                missing = ", ".join(sorted(partner.keys_to_destroy))
                raise ReplayViolation(
                    partner.resigned_at, None, f"{name} resigned but keys not destroyed: {missing}"
                )

    # -- the state, for a broker that resumes from its log ----------------------------

    @property
    def size(self) -> int:
        """Entries applied so far."""
        return self._count

    @property
    def now_ms(self) -> int:
        """Time of the last entry applied (0 for an empty log)."""
        return self._now

    @property
    def usage(self) -> UsageLedger:
        """Grants and releases per partner, for rate limits and budgets."""
        return self._usage

    @property
    def revocations(self) -> RevocationList:
        """Grants revoked one by one or by a resignation."""
        return self._revoked

    def standing(self, name: str) -> Standing:
        """``name``'s standing after the entries applied so far."""
        partner = self._partners.get(name)
        return partner.standing(name) if partner else Standing(name, None)

    def partners(self) -> list[str]:
        """Every partner the log has mentioned, sorted."""
        return sorted(self._partners)

    def grant(self, grant_id: str) -> GrantTerms | None:
        """The logged grant ``grant_id``, if any."""
        return self._grants.get(grant_id)

    def _partner(self, name: str) -> _Partner:
        return self._partners.setdefault(name, _Partner())

    def _apply(self, index: int, entry: Entry) -> str | None:
        kind = entry.type
        if kind is EntryType.POLICY_LOAD:
            policy = self._policies.get(entry.param_str("policy_hash"))
            if policy is None:
                return "policy unknown to the auditor (pass its file with --policy)"
            if policy.version != entry.param_str("policy_version"):
                return "policy version does not match the policy file"
            self.policy = policy
            return None
        if self.policy is None:
            return "no policy loaded yet"
        partner = self._partner(entry.subject)
        if partner.resigned_at is not None and kind in _NOT_AFTER_RESIGNATION:
            return "partner has resigned"
        handler = self._handlers.get(kind)
        return handler(index, entry, partner) if handler else None  # refusals: nothing to check

    def _enrol(self, index: int, entry: Entry, partner: _Partner) -> str | None:
        if partner.level is not None and partner.resigned_at is None:
            return "already enrolled"
        if partner.keys_to_destroy:
            return "re-enrolled before the old keys were destroyed"
        self._partners[entry.subject] = _Partner(level=1, since_ms=entry.time_ms)
        return None

    def _level_change(self, index: int, entry: Entry, partner: _Partner) -> str | None:
        assert self.policy is not None
        if partner.level is None:
            return "partner is not enrolled"
        if entry.param_int("from_level") != partner.level:
            return f"partner is at level {partner.level}, not {entry.param_int('from_level')}"
        if entry.param_int("to_level") not in self.policy.levels:
            return "no such level in the policy"
        partner.level = entry.param_int("to_level")
        return None

    def _grant(self, index: int, entry: Entry, partner: _Partner) -> str | None:
        assert self.policy is not None
        standing = partner.standing(entry.subject)
        operation = entry.param_str("operation")
        decision = decide_grant(
            self.policy, standing, operation, now_ms=entry.time_ms, usage=self._usage
        )
        if not decision.allowed:
            return f"grant not allowed by the policy ({decision.reason})"
        grant_id = entry.param_str("grant_id")
        if grant_id in self._grants:
            return "grant id reused"
        if entry.param_int("level") != partner.level:
            return "grant level differs from the partner's level"
        expires = entry.param_int("expires_ms")
        if not entry.time_ms < expires <= entry.time_ms + self.policy.limits.grant_ttl_ms:
            return "grant lifetime is outside the policy's"
        assert partner.level is not None
        self._grants[grant_id] = GrantTerms(
            grant_id=grant_id,
            partner=entry.subject,
            operation=operation,
            level=partner.level,
            issued_ms=entry.time_ms,
            expires_ms=expires,
            min_cohort=self.policy.limits.min_cohort,
            max_set_size=self.policy.limits.max_set_size,
        )
        self._usage.record(entry.subject, UsageLedger.GRANT, entry.time_ms)
        return None

    def _release(self, index: int, entry: Entry, partner: _Partner) -> str | None:
        grant = self._grants.get(entry.param_str("grant_id"))
        if grant is None:
            return "release without a logged grant"
        decision = decide_release(
            self.policy,
            partner.standing(entry.subject),
            grant,
            entry.param_str("operation"),
            now_ms=entry.time_ms,
            usage=self._usage,
            input_count=entry.param_int("input_count"),
            released_count=entry.param_int("released_count"),
        )
        if not decision.allowed:
            return f"release not allowed by the policy ({decision.reason})"
        if self._revoked.is_revoked(grant):
            return "release under a revoked grant"
        try:
            self._spent.spend(grant)
        except VerificationError:
            return "grant used for a second release"
        self._usage.record(entry.subject, UsageLedger.RELEASE, entry.time_ms)
        return None

    def _revocation(self, index: int, entry: Entry, partner: _Partner) -> str | None:
        grant = self._grants.get(entry.param_str("grant_id"))
        if grant is None or grant.partner != entry.subject:
            return "revokes a grant this partner was never given"
        self._revoked.revoke(grant.grant_id)
        return None

    def _resignation(self, index: int, entry: Entry, partner: _Partner) -> str | None:
        assert self.policy is not None
        if partner.level is None:
            return "partner is not enrolled"
        partner.resigned_at = index
        partner.keys_to_destroy = set(self.policy.destroy_keys)
        self._revoked.revoke_partner(entry.subject, entry.time_ms)
        return None

    def _key_destruction(self, index: int, entry: Entry, partner: _Partner) -> str | None:
        partner.keys_to_destroy.discard(entry.param_str("key_kind"))
        return None
