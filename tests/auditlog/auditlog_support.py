"""A simulated broker for the audit tests: decides with the policy core, logs each decision.

It behaves as issue 6's broker must (log first, then act), so a log it writes verifies;
tests that need a misbehaving broker append raw entries to ``network.log`` themselves.
"""

from __future__ import annotations

import hashlib
import itertools

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keynode.auditlog import Entry, NoteSigner, PolicyLog, records
from keynode.policy import (
    GrantSigner,
    Policy,
    SignedGrant,
    Standing,
    UsageLedger,
    decide_grant,
    decide_release,
    default_policy,
)

ORIGIN = "keynode.test/policy-log"
START_MS = 1_763_900_000_000


def make_signer(name: str = ORIGIN, seed: int = 1) -> NoteSigner:
    """A deterministic checkpoint signer (seed -> key)."""
    return NoteSigner(name, Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32))


def h(text: str) -> str:
    """A stand-in SHA-256 hex for parameters, certificates and keys."""
    return hashlib.sha256(text.encode()).hexdigest()


class Network:
    """The broker's decision loop with a fake clock and counter-based grant nonces."""

    def __init__(self, log: PolicyLog, policy: Policy | None = None) -> None:
        self.log = log
        self.policy = policy or default_policy()
        self.now = START_MS
        self.usage = UsageLedger()
        self.standings: dict[str, Standing] = {}
        counter = itertools.count()
        self.signer = GrantSigner(
            Ed25519PrivateKey.from_private_bytes(bytes(32)),
            "broker",
            clock=lambda: self.now,
            rng=lambda n: next(counter).to_bytes(n, "big"),
        )
        self.append(records.policy_loaded(self.policy, actor="operator", now_ms=self.now))

    def append(self, entry: Entry) -> None:
        self.log.append(entry)

    def tick(self, ms: int = 1000) -> None:
        self.now += ms

    def enrol(self, partner: str, level: int = 1) -> None:
        self.append(records.enrolled(partner, h(partner), actor="operator", now_ms=self.now))
        self.standings[partner] = Standing(partner, 1, since_ms=self.now)
        if level != 1:
            self.set_level(partner, level)

    def set_level(self, partner: str, level: int) -> None:
        old = self.standings[partner]
        self.append(
            records.level_changed(partner, old.level or 1, level, actor="operator", now_ms=self.now)
        )
        self.standings[partner] = Standing(partner, level, since_ms=old.since_ms)

    def grant(self, partner: str, operation: str) -> SignedGrant:
        standing = self.standings[partner]
        decision = decide_grant(self.policy, standing, operation, now_ms=self.now, usage=self.usage)
        if not decision.allowed:
            self.append(
                records.refused(
                    partner, operation, str(decision.reason), actor="broker", now_ms=self.now
                )
            )
            decision.check()
        signed = self.signer.issue(decision, self.policy, standing)
        self.append(records.granted(signed, actor="broker"))
        self.usage.record(partner, UsageLedger.GRANT, self.now)
        return signed

    def release(self, signed: SignedGrant, released: int = 120, inputs: int = 1000) -> None:
        grant = signed.grant
        decide_release(
            self.policy,
            self.standings[grant.partner],
            grant,
            grant.operation,
            now_ms=self.now,
            usage=self.usage,
            input_count=inputs,
            released_count=released,
        ).check()
        self.append(
            records.released(
                grant,
                input_count=inputs,
                released_count=released,
                params_hash=h(grant.grant_id),
                actor="broker",
                now_ms=self.now,
            )
        )
        self.usage.record(grant.partner, UsageLedger.RELEASE, self.now)

    def resign(self, partner: str, destroy: tuple[str, ...] | None = None) -> None:
        kinds = self.policy.destroy_keys if destroy is None else destroy
        self.log.append_all(
            [records.resigned(partner, "partner-request", actor="operator", now_ms=self.now)]
            + [
                records.key_destroyed(
                    partner, kind, h(partner + kind), actor="broker", now_ms=self.now
                )
                for kind in kinds
            ]
        )
        old = self.standings[partner]
        self.standings[partner] = Standing(partner, old.level, resigned=True, since_ms=old.since_ms)

    def story(self) -> None:
        """A small, valid network history: levels, grants, releases, a resignation."""
        self.enrol("bank", level=2)
        self.enrol("insurer", level=3)
        self.tick()
        self.release(self.grant("bank", "overlap.size"))
        self.tick()
        self.release(self.grant("insurer", "overlap.membership"), released=7)
        self.set_level("bank", 4)
        self.tick()
        self.release(self.grant("bank", "aggregate.segment"))
        self.tick()
        self.resign("insurer")
        self.tick()
        self.release(self.grant("bank", "segment.counts"), released=64)
