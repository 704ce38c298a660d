"""The kinds of customer identifier keynode matches on, and the error for a bad one."""

from __future__ import annotations

import enum

from keynode.errors import InputError


class KeyKind(enum.StrEnum):
    """A kind of identifier. Its value prefixes the canonical bytes, so kinds never collide."""

    EMAIL = "email"
    PHONE = "phone"
    CUSTOMER_ID = "customer_id"


class InvalidIdentifier(InputError):
    """One identifier value cannot be normalised.

    ``reason`` is a short stable code (``"missing_at"``, ``"invalid_number"``, …) used to
    count rejections. The message never contains the value itself: identifiers are
    personal data and error messages end up in logs.
    """

    def __init__(self, kind: KeyKind, reason: str) -> None:
        super().__init__(f"invalid {kind.value}: {reason.replace('_', ' ')}")
        self.kind = kind
        self.reason = reason


def parse_kind(kind: KeyKind | str) -> KeyKind:
    """Return ``kind`` as a :class:`KeyKind`; an unknown name is an :class:`InputError`."""
    try:
        return KeyKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in KeyKind)
        raise InputError(f"unknown identifier kind {kind!r} (known: {known})") from None
