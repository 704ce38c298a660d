"""The policy replay catches a broker that logs what the policy forbids, naming the entry.

Each case drives the simulated broker honestly, then appends (validly signed) entries
that a misbehaving broker might have written.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from auditlog_support import Network, h

from keynode.auditlog import Entry, EntryType, NoteVerifier, PolicyLog, records, verify_log
from keynode.errors import VerificationError
from keynode.policy import Decision, SignedGrant, Standing, default_policy

POLICY = default_policy()


def forced_grant(net: Network, partner: str, operation: str) -> SignedGrant:
    """A grant the broker signs and logs without asking the policy."""
    signed = net.signer.issue(
        Decision(True, partner, operation), net.policy, net.standings[partner]
    )
    net.append(records.granted(signed, actor="broker"))
    return signed


def raw_release(net: Network, signed: SignedGrant, released: int = 120) -> None:
    net.append(
        records.released(
            signed.grant,
            input_count=1000,
            released_count=released,
            params_hash=h("p"),
            actor="broker",
            now_ms=net.now,
        )
    )


def release_without_grant(net: Network) -> None:
    net.enrol("bank", level=2)
    unlogged = net.signer.issue(
        Decision(True, "bank", "overlap.size"), net.policy, net.standings["bank"]
    )
    raw_release(net, unlogged)


def release_after_resignation(net: Network) -> None:
    net.enrol("bank", level=2)
    signed = net.grant("bank", "overlap.size")
    net.resign("bank")
    raw_release(net, signed)


def grant_above_level(net: Network) -> None:
    net.enrol("bank", level=2)
    forced_grant(net, "bank", "aggregate.segment")


def grant_to_unknown_operation(net: Network) -> None:
    net.enrol("bank", level=6)
    forced_grant(net, "bank", "export.everything")


def grant_after_resignation(net: Network) -> None:
    net.enrol("bank", level=2)
    net.resign("bank")
    net.standings["bank"] = Standing("bank", 2)  # a broker that forgot the resignation
    forced_grant(net, "bank", "overlap.size")


def release_under_expired_grant(net: Network) -> None:
    net.enrol("bank", level=2)
    signed = net.grant("bank", "overlap.size")
    net.tick(POLICY.limits.grant_ttl_ms)
    raw_release(net, signed)


def release_under_revoked_grant(net: Network) -> None:
    net.enrol("bank", level=2)
    signed = net.grant("bank", "overlap.size")
    net.append(records.revoked(signed.grant, "operator", actor="operator", now_ms=net.now))
    raw_release(net, signed)


def grant_used_twice(net: Network) -> None:
    net.enrol("bank", level=2)
    signed = net.grant("bank", "overlap.size")
    net.release(signed)
    raw_release(net, signed)


def release_below_cohort(net: Network) -> None:
    net.enrol("bank", level=2)
    raw_release(net, net.grant("bank", "overlap.size"), released=POLICY.limits.min_cohort - 1)


def release_after_level_drop(net: Network) -> None:
    net.enrol("bank", level=3)
    signed = net.grant("bank", "overlap.membership")
    net.set_level("bank", 2)
    raw_release(net, signed, released=3)


def release_under_grant_of_earlier_enrolment(net: Network) -> None:
    net.enrol("bank", level=2)
    signed = net.grant("bank", "overlap.size")
    net.resign("bank")
    net.tick()
    net.enrol("bank", level=2)
    raw_release(net, signed)


def resignation_without_key_destruction(net: Network) -> None:
    net.enrol("bank", level=2)
    net.resign("bank", destroy=("ecdh_scalar",))


def re_enrolment_before_key_destruction(net: Network) -> None:
    net.enrol("bank", level=2)
    net.resign("bank", destroy=())
    net.enrol("bank")


def grants_beyond_the_rate_limit(net: Network) -> None:
    net.enrol("bank", level=2)
    for _ in range(POLICY.limits.rate_limit.count + 1):
        forced_grant(net, "bank", "overlap.size")


def level_change_from_the_wrong_level(net: Network) -> None:
    net.enrol("bank", level=2)
    net.append(records.level_changed("bank", 3, 4, actor="operator", now_ms=net.now))


def double_enrolment(net: Network) -> None:
    net.enrol("bank")
    net.append(records.enrolled("bank", h("bank2"), actor="operator", now_ms=net.now))


def unknown_policy(net: Network) -> None:
    net.append(
        records.refused("bank", "overlap.size", "not_enrolled", actor="broker", now_ms=net.now)
    )
    params = {"policy_hash": h("another policy"), "policy_version": "v9"}
    net.append(Entry(EntryType.POLICY_LOAD, net.now, "operator", "", params))


def time_goes_backwards(net: Network) -> None:
    net.enrol("bank", level=2)
    net.tick(-1)
    net.enrol("insurer")


VIOLATIONS: dict[str, tuple[Callable[[Network], None], str]] = {
    "release without a grant": (release_without_grant, "entry 3 .*release without a logged grant"),
    "release after resignation": (release_after_resignation, "entry 8 .*partner has resigned"),
    "grant above the partner's level": (grant_above_level, "entry 3 .*level_too_low"),
    "grant of an unknown operation": (grant_to_unknown_operation, "unknown_operation"),
    "grant after resignation": (grant_after_resignation, "partner has resigned"),
    "release under an expired grant": (release_under_expired_grant, "grant_expired"),
    "release under a revoked grant": (release_under_revoked_grant, "revoked grant"),
    "grant used twice": (grant_used_twice, "entry 5 .*second release"),
    "release below the cohort size k": (release_below_cohort, "below_cohort"),
    "release after a level drop": (release_after_level_drop, "level_too_low"),
    "release under a grant of an earlier enrolment": (
        release_under_grant_of_earlier_enrolment,
        "grant_before_enrolment",
    ),
    "resignation without key destruction": (
        resignation_without_key_destruction,
        "entry 3 .*keys not destroyed: lease_key, token_key",
    ),
    "re-enrolment before key destruction": (
        re_enrolment_before_key_destruction,
        "before the old keys",
    ),
    "grants beyond the rate limit": (grants_beyond_the_rate_limit, "rate_limited"),
    "level change from the wrong level": (level_change_from_the_wrong_level, "not 3"),
    "double enrolment": (double_enrolment, "already enrolled"),
    "unknown policy": (unknown_policy, "entry 2 .*policy unknown to the auditor"),
    "time goes backwards": (time_goes_backwards, "time goes backwards"),
}


def _verify(log: PolicyLog, verifier: NoteVerifier) -> None:
    verify_log(log.store, verifier, {POLICY.hash: POLICY})


@pytest.mark.parametrize("case", list(VIOLATIONS))
def test_policy_violation_is_named(
    case: str, network: Network, log: PolicyLog, verifier: NoteVerifier
) -> None:
    misbehave, message = VIOLATIONS[case]
    misbehave(network)
    with pytest.raises(VerificationError, match=message):
        _verify(log, verifier)


def test_honest_history_replays(network: Network, log: PolicyLog, verifier: NoteVerifier) -> None:
    network.story()
    network.tick()
    network.enrol("insurer", level=3)  # re-enrolment after resignation and key destruction
    network.release(network.grant("insurer", "overlap.membership"), released=2)
    _verify(log, verifier)


def test_no_policy_loaded_fails_closed(log: PolicyLog, verifier: NoteVerifier) -> None:
    log.append(records.enrolled("bank", h("bank"), actor="operator", now_ms=1))
    with pytest.raises(VerificationError, match=r"entry 0 .*no policy loaded"):
        _verify(log, verifier)
