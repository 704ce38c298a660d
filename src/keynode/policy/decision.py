"""Decisions: may this partner, at its level, run this operation or receive this release?

Two pure functions hold every rule the broker enforces, and the auditor's replay calls
the same two, so the broker and the auditor cannot drift apart:

- :func:`decide_grant` — before a grant is signed;
- :func:`decide_release` — before a result leaves the key node under a grant.

Both fail closed: no policy, an unknown operation, an unknown partner or level, a
resigned partner — each denies. They read a :class:`UsageLedger` (rate limits and query
budgets) but never change it: the caller records usage once the decision is logged.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum

from keynode.errors import InputError, LimitExceeded, PolicyDenied
from keynode.policy.model import Policy, Window


class Reason(StrEnum):
    """Why a decision denied (these tokens go into the policy log's refusal entries)."""

    NO_POLICY = "no_policy"
    UNKNOWN_OPERATION = "unknown_operation"
    NOT_ENROLLED = "not_enrolled"
    RESIGNED = "resigned"
    LEVEL_TOO_LOW = "level_too_low"
    HASHED_FORBIDDEN = "hashed_overlap_forbidden"
    SET_TOO_LARGE = "set_too_large"
    RATE_LIMITED = "rate_limited"
    BUDGET_EXHAUSTED = "budget_exhausted"
    BELOW_COHORT = "below_cohort"
    GRANT_MISMATCH = "grant_mismatch"
    GRANT_EXPIRED = "grant_expired"
    GRANT_STALE = "grant_before_enrolment"


_LIMIT_REASONS = {
    Reason.SET_TOO_LARGE,
    Reason.RATE_LIMITED,
    Reason.BUDGET_EXHAUSTED,
}


@dataclass(frozen=True)
class Standing:
    """A partner's place in the network at one moment.

    ``level`` is None for a partner that is not enrolled; ``since_ms`` is when its
    current enrolment began (grants issued before it belong to an earlier enrolment).
    """

    partner: str
    level: int | None
    resigned: bool = False
    since_ms: int = 0


@dataclass(frozen=True)
class GrantTerms:
    """What a grant allows: the subset of a signed grant that the rules read."""

    grant_id: str
    partner: str
    operation: str
    level: int
    issued_ms: int
    expires_ms: int
    min_cohort: int
    max_set_size: int


@dataclass(frozen=True)
class Decision:
    """The answer: allowed or not, and the reason token when not."""

    allowed: bool
    partner: str
    operation: str
    reason: Reason | None = None

    def check(self) -> None:
        """Raise PolicyDenied (or LimitExceeded for caps and budgets) unless allowed."""
        if self.allowed:
            return
        message = f"{self.operation} for {self.partner}: {self.reason}"
        if self.reason in _LIMIT_REASONS:
            raise LimitExceeded(message)
        raise PolicyDenied(message)


class UsageLedger:
    """Per-partner event times for sliding-window limits: grants and releases.

    Pure bookkeeping with explicit times, so the broker (live) and the replay (from the
    log) count the same way. Events are recorded in time order (the log's order), which
    keeps :meth:`count` a binary search.
    """

    GRANT = "grant"
    RELEASE = "release"

    def __init__(self) -> None:
        self._events: dict[tuple[str, str], list[int]] = defaultdict(list)

    def record(self, partner: str, kind: str, at_ms: int) -> None:
        """Note one event (after it has been logged); times must not go backwards."""
        events = self._events[(partner, kind)]
        if events and at_ms < events[-1]:
            raise InputError("usage events must be recorded in time order")
        events.append(at_ms)

    def count(self, partner: str, kind: str, now_ms: int, window: Window) -> int:
        """Events in ``(now - window, now]``."""
        events = self._events.get((partner, kind))
        if not events:
            return 0
        return bisect_right(events, now_ms) - bisect_right(events, now_ms - window.window_ms)

    def forget_before(self, cutoff_ms: int) -> None:
        """Drop events at or before ``cutoff_ms`` (older than any window reaches)."""
        for key, events in self._events.items():
            self._events[key] = events[bisect_right(events, cutoff_ms) :]


def _deny(standing: Standing, operation: str, reason: Reason) -> Decision:
    return Decision(False, standing.partner, operation, reason)


def _standing_reason(policy: Policy | None, standing: Standing, operation: str) -> Reason | None:
    if policy is None or not policy.operations:
        return Reason.NO_POLICY
    rule = policy.rule(operation)
    if rule is None:
        return Reason.UNKNOWN_OPERATION
    if standing.resigned:
        return Reason.RESIGNED
    if standing.level is None or standing.level not in policy.levels:
        return Reason.NOT_ENROLLED
    if not policy.allows(standing.level, operation):
        return Reason.LEVEL_TOO_LOW
    if rule.hashed and not policy.limits.hashed_overlap_allowed:
        return Reason.HASHED_FORBIDDEN
    return None


def decide_grant(
    policy: Policy | None,
    standing: Standing,
    operation: str,
    *,
    now_ms: int,
    usage: UsageLedger,
    set_size: int | None = None,
) -> Decision:
    """May ``standing.partner`` be granted ``operation`` now?"""
    reason = _standing_reason(policy, standing, operation)
    if reason is not None:
        return _deny(standing, operation, reason)
    assert policy is not None
    limits = policy.limits
    if set_size is not None and set_size > limits.max_set_size:
        return _deny(standing, operation, Reason.SET_TOO_LARGE)
    used = usage.count(standing.partner, UsageLedger.GRANT, now_ms, limits.rate_limit)
    if used >= limits.rate_limit.count:
        return _deny(standing, operation, Reason.RATE_LIMITED)
    return Decision(True, standing.partner, operation)


def grant_terms(
    policy: Policy, standing: Standing, operation: str, *, grant_id: str, now_ms: int
) -> GrantTerms:
    """The terms a grant carries when issued under ``policy`` now (limits, expiry)."""
    assert standing.level is not None
    return GrantTerms(
        grant_id=grant_id,
        partner=standing.partner,
        operation=operation,
        level=standing.level,
        issued_ms=now_ms,
        expires_ms=now_ms + policy.limits.grant_ttl_ms,
        min_cohort=policy.limits.min_cohort,
        max_set_size=policy.limits.max_set_size,
    )


def decide_release(
    policy: Policy | None,
    standing: Standing,
    grant: GrantTerms,
    operation: str,
    *,
    now_ms: int,
    usage: UsageLedger,
    input_count: int,
    released_count: int,
) -> Decision:
    """May a result of ``operation`` covering these counts leave now, under ``grant``?

    The grant must be the partner's, for this operation, unexpired and from its current
    enrolment; the partner's level must still allow the operation; the input must fit the
    grant's set-size cap; a cohort operation must cover at least ``min_cohort``
    customers; and the partner's query budget must not be spent. Revocation and single
    use are checked by :class:`~keynode.policy.grants.RevocationList` and
    :class:`~keynode.policy.grants.ReplayGuard`.
    """
    reason = _standing_reason(policy, standing, operation)
    if reason is not None:
        return _deny(standing, operation, reason)
    assert policy is not None
    rule = policy.operations[operation]
    if grant.partner != standing.partner or grant.operation != operation:
        return _deny(standing, operation, Reason.GRANT_MISMATCH)
    if grant.issued_ms < standing.since_ms:
        return _deny(standing, operation, Reason.GRANT_STALE)
    if not grant.issued_ms <= now_ms < grant.expires_ms:
        return _deny(standing, operation, Reason.GRANT_EXPIRED)
    if input_count > grant.max_set_size:
        return _deny(standing, operation, Reason.SET_TOO_LARGE)
    if rule.cohort and released_count < grant.min_cohort:
        return _deny(standing, operation, Reason.BELOW_COHORT)
    budget = policy.limits.query_budget
    if usage.count(standing.partner, UsageLedger.RELEASE, now_ms, budget) >= budget.count:
        return _deny(standing, operation, Reason.BUDGET_EXHAUSTED)
    return Decision(True, standing.partner, operation)
