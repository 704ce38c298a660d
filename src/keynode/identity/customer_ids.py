"""Customer and loyalty ids: trimmed, NFKC-normalised, case-folded when the profile says so.

NFKC makes the full-width and compatibility forms that creep in through scanners and
spreadsheets (full-width ``AB12``, U+FF21…) equal to their plain forms. Case folding is a
profile option because some systems issue ids in which case carries meaning.
"""

from __future__ import annotations

import unicodedata

from keynode.identity.kinds import InvalidIdentifier, KeyKind

MAX_LENGTH = 128


def normalise_customer_id(raw: str, *, casefold: bool) -> str:
    """Return the canonical form of the id ``raw``, or raise InvalidIdentifier."""
    if raw.isascii():
        text = raw.strip()
        if casefold:
            text = text.lower()  # ASCII case folding
        if text.isprintable() and 0 < len(text) <= MAX_LENGTH:
            return text
    else:
        text = unicodedata.normalize("NFKC", raw).strip()
        if casefold:
            text = unicodedata.normalize("NFKC", text.casefold())
    if not text:
        raise InvalidIdentifier(KeyKind.CUSTOMER_ID, "empty")
    if len(text) > MAX_LENGTH:
        raise InvalidIdentifier(KeyKind.CUSTOMER_ID, "too_long")
    if not text.isprintable():
        raise InvalidIdentifier(KeyKind.CUSTOMER_ID, "unprintable_character")
    return text
