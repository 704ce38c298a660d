"""Sharing levels, the capability matrix, limits, decisions and signed grants (pure).

This package is the single statement of the network's rules. The broker calls it to
decide; the auditor's replay (:mod:`keynode.auditlog.replay`) calls the very same
functions over the policy log, so the two cannot drift. No gRPC, no I/O beyond loading
a policy file.

How the broker uses it::

    policy = load_policy_file(path)            # or default_policy(); log policy.hash
    standing = Standing("bank", level=2, since_ms=enrolled_at)
    decision = decide_grant(policy, standing, "overlap.size", now_ms=now, usage=usage)
    if not decision.allowed:
        ...                                     # log a refusal with decision.reason
    signed = signer.issue(decision, policy, standing)   # GrantSigner
    ...                                         # log the grant (signed.grant, token_hash)
    usage.record("bank", UsageLedger.GRANT, now)

and the matching service, when a session opens::

    grant = verifier.verify(token, partner=peer)  # GrantVerifier: signature, expiry
    revocations.check(grant)                      # RevocationList
    replays.spend(grant)                          # ReplayGuard: one session per grant

and before a result leaves the key node::

    decide_release(policy, standing, grant, grant.operation, now_ms=now, usage=usage,
                   input_count=n_in, released_count=n_out).check()
"""

from keynode.policy.decision import (
    Decision,
    GrantTerms,
    Reason,
    Standing,
    UsageLedger,
    decide_grant,
    decide_release,
    grant_terms,
)
from keynode.policy.grants import (
    Grant,
    GrantSigner,
    GrantVerifier,
    ReplayGuard,
    RevocationList,
    SignedGrant,
    system_clock_ms,
)
from keynode.policy.model import (
    LEVELS,
    Limits,
    OperationRule,
    Policy,
    Window,
    default_policy,
    default_policy_bytes,
    load_policy,
    load_policy_file,
)

__all__ = [
    "LEVELS",
    "Decision",
    "Grant",
    "GrantSigner",
    "GrantTerms",
    "GrantVerifier",
    "Limits",
    "OperationRule",
    "Policy",
    "Reason",
    "ReplayGuard",
    "RevocationList",
    "SignedGrant",
    "Standing",
    "UsageLedger",
    "Window",
    "decide_grant",
    "decide_release",
    "default_policy",
    "default_policy_bytes",
    "grant_terms",
    "load_policy",
    "load_policy_file",
    "system_clock_ms",
]
