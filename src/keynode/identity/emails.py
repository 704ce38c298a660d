"""Email addresses: trimmed, lower-cased, domain in its ASCII (IDNA) form.

Lower-casing the local part is not what RFC 5321 promises, but it is what every mail
provider a retailer's customers use does, and CRM exports differ in case all the time.
Provider rules (Gmail ignores dots and ``+tags`` in the local part, and
``googlemail.com`` is ``gmail.com``) are applied only when the profile asks for them,
because they merge addresses that other providers keep apart.
"""

from __future__ import annotations

import re
import unicodedata

from keynode.identity.kinds import InvalidIdentifier, KeyKind

MAX_LENGTH = 254  # RFC 5321 path limit

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"(?:{_LABEL}\.)+[a-z](?:[a-z0-9-]{{0,61}}[a-z0-9])?")
_ASCII_LOCAL = re.compile(r"[a-z0-9.!#$%&'*+/=?^_`{|}~-]+")
ASCII_EMAIL = re.compile(_ASCII_LOCAL.pattern + "@" + _DOMAIN.pattern)
_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def normalise_email(raw: str, *, gmail_rules: bool) -> str:
    """Return the canonical form of the address ``raw``, or raise InvalidIdentifier."""
    text = raw.strip()
    if text.isascii():
        text = text.lower()
        if len(text) <= MAX_LENGTH and ASCII_EMAIL.fullmatch(text):
            return _provider_rules(text, gmail_rules)
    return _provider_rules(_normalise_slow(text), gmail_rules)


def _normalise_slow(text: str) -> str:
    """The general path: Unicode, internationalised domains, and the reason for a rejection."""
    text = unicodedata.normalize("NFC", text.lower())
    if not text:
        raise InvalidIdentifier(KeyKind.EMAIL, "empty")
    if any(ch.isspace() for ch in text):
        raise InvalidIdentifier(KeyKind.EMAIL, "contains_space")
    if any(unicodedata.category(ch)[0] == "C" for ch in text):
        raise InvalidIdentifier(KeyKind.EMAIL, "control_character")
    ats = text.count("@")
    if ats != 1:
        raise InvalidIdentifier(KeyKind.EMAIL, "missing_at" if ats == 0 else "multiple_at")
    local, domain = text.split("@")
    if not local:
        raise InvalidIdentifier(KeyKind.EMAIL, "empty_local_part")
    if not all(not ch.isascii() or _ASCII_LOCAL.fullmatch(ch) for ch in local):
        raise InvalidIdentifier(KeyKind.EMAIL, "invalid_local_part")
    address = f"{local}@{_ascii_domain(domain)}"
    if len(address) > MAX_LENGTH:
        raise InvalidIdentifier(KeyKind.EMAIL, "too_long")
    return address


def _ascii_domain(domain: str) -> str:
    """``domain`` in ASCII: Unicode labels become ``xn--`` labels (IDNA 2003, stdlib codec)."""
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidIdentifier(KeyKind.EMAIL, "invalid_domain") from None
    if not _DOMAIN.fullmatch(domain):
        raise InvalidIdentifier(KeyKind.EMAIL, "invalid_domain")
    return domain


def _provider_rules(address: str, gmail_rules: bool) -> str:
    """Apply the Gmail rules to a canonical address when asked; others pass unchanged."""
    if not gmail_rules:
        return address
    local, _, domain = address.rpartition("@")
    if domain not in _GMAIL_DOMAINS:
        return address
    local = local.split("+", 1)[0].replace(".", "")
    if not local:
        raise InvalidIdentifier(KeyKind.EMAIL, "empty_local_part")
    return f"{local}@gmail.com"
