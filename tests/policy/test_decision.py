"""Grant and release decisions: the matrix from the policy file, limits, and failing closed."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keynode.errors import LimitExceeded, PolicyDenied
from keynode.policy import (
    LEVELS,
    GrantTerms,
    Policy,
    Reason,
    Standing,
    UsageLedger,
    decide_grant,
    decide_release,
    default_policy,
    default_policy_bytes,
    load_policy,
)

POLICY = default_policy()
RAW = json.loads(default_policy_bytes())
OPERATIONS = sorted(RAW["operations"])
NOW = 1_000_000_000
BANK = Standing("bank", 2)


def policy_with(**changes: object) -> Policy:
    doc = json.loads(default_policy_bytes())
    for key, value in changes.items():
        if key == "operations":
            doc["operations"] = value
        else:
            doc["limits"][key] = value
    return load_policy(json.dumps(doc).encode())


def grant(**changes: object) -> GrantTerms:
    terms = GrantTerms("00" * 16, "bank", "overlap.size", 2, NOW, NOW + 300_000, 50, 1000)
    return replace(terms, **changes)  # type: ignore[arg-type]


def release(
    standing: Standing = BANK,
    terms: GrantTerms | None = None,
    *,
    operation: str = "overlap.size",
    policy: Policy | None = POLICY,
    now: int = NOW + 1,
    inputs: int = 1000,
    released: int = 50,
    usage: UsageLedger | None = None,
) -> Reason | None:
    terms = terms or grant()
    decision = decide_release(
        policy,
        standing,
        terms,
        operation,
        now_ms=now,
        usage=usage or UsageLedger(),
        input_count=inputs,
        released_count=released,
    )
    return decision.reason


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_grant_follows_the_matrix_in_the_file(level: int, operation: str) -> None:
    decision = decide_grant(
        POLICY, Standing("bank", level), operation, now_ms=NOW, usage=UsageLedger()
    )
    assert decision.allowed == (RAW["operations"][operation]["min_level"] <= level)
    if not decision.allowed:
        assert decision.reason is Reason.LEVEL_TOO_LOW
        with pytest.raises(PolicyDenied):
            decision.check()
    else:
        decision.check()


FAIL_CLOSED = {
    "no policy": (None, Standing("bank", 6), "overlap.size", Reason.NO_POLICY),
    "empty policy": (
        policy_with(operations={}),
        Standing("bank", 6),
        "overlap.size",
        Reason.NO_POLICY,
    ),
    "unknown operation": (
        POLICY,
        Standing("bank", 6),
        "overlap.everything",
        Reason.UNKNOWN_OPERATION,
    ),
    "not enrolled": (POLICY, Standing("bank", None), "catalogue.read", Reason.NOT_ENROLLED),
    "unknown level": (POLICY, Standing("bank", 7), "catalogue.read", Reason.NOT_ENROLLED),
    "resigned": (POLICY, Standing("bank", 6, resigned=True), "catalogue.read", Reason.RESIGNED),
    "hashed overlap forbidden": (
        policy_with(hashed_overlap_allowed=False),
        Standing("bank", 6),
        "overlap.size.hashed",
        Reason.HASHED_FORBIDDEN,
    ),
}


@pytest.mark.parametrize("case", list(FAIL_CLOSED))
def test_grant_fails_closed(case: str) -> None:
    policy, standing, operation, reason = FAIL_CLOSED[case]
    decision = decide_grant(policy, standing, operation, now_ms=NOW, usage=UsageLedger())
    assert (decision.allowed, decision.reason) == (False, reason)
    with pytest.raises(PolicyDenied):
        decision.check()


def test_set_size_cap_and_rate_limit_are_limits() -> None:
    usage = UsageLedger()
    too_big = decide_grant(
        POLICY,
        Standing("bank", 2),
        "overlap.size",
        now_ms=NOW,
        usage=usage,
        set_size=POLICY.limits.max_set_size + 1,
    )
    assert too_big.reason is Reason.SET_TOO_LARGE
    with pytest.raises(LimitExceeded):
        too_big.check()
    window = POLICY.limits.rate_limit
    for i in range(window.count):
        usage.record("bank", UsageLedger.GRANT, NOW + i)
    last = NOW + window.count
    assert (
        decide_grant(POLICY, Standing("bank", 2), "overlap.size", now_ms=last, usage=usage).reason
        is Reason.RATE_LIMITED
    )
    # The window slides: once the first grant is older than the window, one more is allowed.
    later = NOW + window.window_ms
    assert decide_grant(
        POLICY, Standing("bank", 2), "overlap.size", now_ms=later, usage=usage
    ).allowed
    assert decide_grant(
        POLICY, Standing("other", 2), "overlap.size", now_ms=last, usage=usage
    ).allowed


def test_release_allowed_under_a_matching_grant() -> None:
    assert release() is None


RELEASE_DENIALS = {
    "another partner's grant": ({"terms": grant(partner="insurer")}, Reason.GRANT_MISMATCH),
    "another operation's grant": (
        {"terms": grant(operation="catalogue.read")},
        Reason.GRANT_MISMATCH,
    ),
    "expired": ({"now": NOW + 300_000}, Reason.GRANT_EXPIRED),
    "not yet valid": ({"now": NOW - 1}, Reason.GRANT_EXPIRED),
    "grant of an earlier enrolment": (
        {"standing": Standing("bank", 2, since_ms=NOW + 1)},
        Reason.GRANT_STALE,
    ),
    "input above the grant's cap": ({"inputs": 1001}, Reason.SET_TOO_LARGE),
    "cohort below k": ({"released": 49}, Reason.BELOW_COHORT),
    "level dropped since the grant": ({"standing": Standing("bank", 1)}, Reason.LEVEL_TOO_LOW),
    "resigned since the grant": ({"standing": Standing("bank", 2, resigned=True)}, Reason.RESIGNED),
    "no policy": ({"policy": None}, Reason.NO_POLICY),
}


@pytest.mark.parametrize("case", list(RELEASE_DENIALS))
def test_release_denials(case: str) -> None:
    kwargs, reason = RELEASE_DENIALS[case]
    assert release(**kwargs) is reason  # type: ignore[arg-type]


def test_membership_has_no_cohort_threshold_but_counts_do() -> None:
    level3 = Standing("bank", 3)
    membership = grant(operation="overlap.membership")
    assert release(level3, membership, operation="overlap.membership", released=1) is None
    counts = grant(operation="segment.counts")
    reason = release(level3, counts, operation="segment.counts", released=1)
    assert reason is Reason.BELOW_COHORT


def test_query_budget() -> None:
    usage = UsageLedger()
    for i in range(POLICY.limits.query_budget.count):
        usage.record("bank", UsageLedger.RELEASE, NOW - 1000 + i)
    assert release(usage=usage) is Reason.BUDGET_EXHAUSTED


def test_usage_ledger_forgets_old_events_and_refuses_time_travel() -> None:
    from keynode.errors import InputError

    usage = UsageLedger()
    for t in (1, 2, 3):
        usage.record("bank", UsageLedger.GRANT, t)
    usage.forget_before(2)
    assert usage.count("bank", UsageLedger.GRANT, 10, POLICY.limits.rate_limit) == 1
    with pytest.raises(InputError):
        usage.record("bank", UsageLedger.GRANT, 0)


actions = st.lists(
    st.one_of(
        st.tuples(st.just("enrol"), st.sampled_from(["bank", "insurer"])),
        st.tuples(st.just("level"), st.sampled_from(["bank", "insurer"]), st.integers(1, 6)),
        st.tuples(st.just("resign"), st.sampled_from(["bank", "insurer"])),
        st.tuples(
            st.just("request"),
            st.sampled_from(["bank", "insurer"]),
            st.sampled_from([*OPERATIONS, "bogus"]),
        ),
    ),
    max_size=40,
)


@given(actions)
def test_random_histories_follow_the_capability_matrix(history: list[tuple]) -> None:
    """Random enrol / level change / request / resign: every decision matches the file's matrix."""
    standings: dict[str, Standing] = {}
    for step in history:
        kind, partner = step[0], step[1]
        current = standings.get(partner, Standing(partner, None))
        if kind == "enrol":
            standings[partner] = Standing(partner, 1)
        elif kind == "level" and current.level is not None and not current.resigned:
            standings[partner] = replace(current, level=step[2])
        elif kind == "resign" and current.level is not None:
            standings[partner] = replace(current, resigned=True)
        elif kind == "request":
            operation = step[2]
            decision = decide_grant(POLICY, current, operation, now_ms=NOW, usage=UsageLedger())
            spec = RAW["operations"].get(operation)
            expected = (
                spec is not None
                and current.level is not None
                and not current.resigned
                and spec["min_level"] <= current.level
            )
            assert decision.allowed == expected
