"""Normalisation profiles: the set of rules both parties must share, and its identity.

A match is only meaningful if both sides turn ``" Alice@Example.com "`` and
``"0151 2345 6789"`` into the same bytes. A :class:`Profile` fixes every rule that
decides this; its :attr:`~Profile.profile_id` names the profile and hashes those rules,
so the handshake can refuse a peer whose rules differ even when the names agree.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from keynode.errors import InputError
from keynode.identity.customer_ids import normalise_customer_id
from keynode.identity.emails import normalise_email
from keynode.identity.kinds import KeyKind, parse_kind
from keynode.identity.phones import PhoneNormaliser, check_region

# Bump whenever a normalisation rule changes its output: old and new ids then differ.
RULES_VERSION = 1

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


@dataclasses.dataclass(frozen=True)
class Profile:
    """The identifier rules of one party.

    ``region`` is the ISO 3166 region whose national phone numbers are read without a
    country code; ``gmail_rules`` folds Gmail dots/``+tags``/googlemail; ``casefold_ids``
    makes customer ids case-insensitive. ``profile_id`` and ``phone_normaliser`` are
    derived from these on construction.
    """

    name: str
    region: str = "DE"
    gmail_rules: bool = False
    casefold_ids: bool = True
    profile_id: str = dataclasses.field(init=False)
    phone_normaliser: PhoneNormaliser = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise InputError(f"invalid profile name {self.name!r}: use [a-z0-9-], at most 32")
        object.__setattr__(self, "region", check_region(self.region))
        digest = hashlib.sha256(json.dumps(self.rules, sort_keys=True).encode()).hexdigest()
        object.__setattr__(self, "profile_id", f"{self.name}/{digest[:16]}")
        object.__setattr__(self, "phone_normaliser", PhoneNormaliser(self.region))

    @property
    def rules(self) -> dict[str, Any]:
        """Every rule that decides the canonical bytes, as JSON-ready data (hashed into the id)."""
        return {
            "rules_version": RULES_VERSION,
            KeyKind.EMAIL.value: {"trim": True, "lowercase": True, "gmail": self.gmail_rules},
            KeyKind.PHONE.value: {"format": "E.164", "region": self.region},
            KeyKind.CUSTOMER_ID.value: {"trim": True, "nfkc": True, "casefold": self.casefold_ids},
        }

    def canonical(self, kind: KeyKind | str, raw: str) -> bytes:
        """Canonical bytes ``b"<kind>:<value>"`` of ``raw``; raises InvalidIdentifier."""
        return self.normaliser(kind)(raw)

    def normaliser(self, kind: KeyKind | str) -> Callable[[str], bytes]:
        """The function ``raw -> canonical bytes`` for ``kind`` (bound once, for bulk use)."""
        kind = parse_kind(kind)
        prefix = f"{kind.value}:".encode()
        if kind is KeyKind.EMAIL:
            gmail = self.gmail_rules

            def canonical(raw: str) -> bytes:
                return prefix + normalise_email(raw, gmail_rules=gmail).encode()

        elif kind is KeyKind.PHONE:
            phone = self.phone_normaliser

            def canonical(raw: str) -> bytes:
                return prefix + phone(raw).encode()

        else:
            casefold = self.casefold_ids

            def canonical(raw: str) -> bytes:
                return prefix + normalise_customer_id(raw, casefold=casefold).encode()

        return canonical


BUILTIN_PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile("default", region="DE", gmail_rules=False, casefold_ids=True),
        Profile("exact-ids", region="DE", gmail_rules=False, casefold_ids=False),
    )
}


def get_profile(
    name: str = "default", region: str | None = None, gmail_rules: bool | None = None
) -> Profile:
    """A built-in profile, with its phone region and Gmail rule overridden where given."""
    try:
        profile = BUILTIN_PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(BUILTIN_PROFILES))
        raise InputError(f"unknown profile {name!r} (built-in: {known})") from None
    changes: dict[str, Any] = {}
    if region is not None:
        changes["region"] = region
    if gmail_rules is not None:
        changes["gmail_rules"] = gmail_rules
    return dataclasses.replace(profile, **changes) if changes else profile


def add_profile_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--profile``, ``--region`` and ``--gmail-rules`` to a command's parser."""
    group = parser.add_argument_group(
        "identifier normalisation (both parties must use the same profile)"
    )
    group.add_argument(
        "--profile",
        default="default",
        choices=sorted(BUILTIN_PROFILES),
        help="named rule set (default: %(default)s; see docs/identity.md)",
    )
    group.add_argument(
        "--region",
        metavar="CC",
        help="region for phone numbers without a country code, e.g. DE, AT (profile's default: DE)",
    )
    group.add_argument(
        "--gmail-rules",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="treat Gmail addresses as Gmail does: ignore dots and +tags, googlemail = gmail",
    )


def profile_from_args(args: argparse.Namespace) -> Profile:
    """The profile selected by the arguments :func:`add_profile_arguments` added."""
    return get_profile(args.profile, region=args.region, gmail_rules=args.gmail_rules)
