"""Synthetic people: identifiers derived from a person number, dirty spellings, near misses.

Person ``p`` has one email, one German mobile number and (if a key-node member) one
loyalty id, all unique to ``p``. Each identifier embeds ``p`` and a check digit, so a
single-character typo can never turn one person's identifier into another's: a
near-miss is guaranteed *not* to match, which is what the demo needs to show.
"""

from __future__ import annotations

import random

FIRST_NAMES = (
    "anna", "ben", "clara", "david", "emma", "felix", "greta", "hannah", "jonas", "lea",
    "lukas", "marie", "noah", "paul", "sophie", "tim", "jana", "elias", "mila", "finn",
    "laura", "max", "nina", "oskar", "petra", "ralf", "sabine", "thomas", "ute", "yusuf",
)  # fmt: skip
LAST_NAMES = (
    "mueller", "schmidt", "schneider", "fischer", "weber", "meyer", "wagner", "becker",
    "schulz", "hoffmann", "koch", "richter", "klein", "wolf", "neumann", "schwarz",
    "braun", "zimmermann", "hartmann", "krueger", "lange", "werner", "krause", "lehmann",
    "yilmaz", "kaya", "nowak", "kowalski", "rossi", "novak",
)  # fmt: skip
# Weighted by repetition: roughly the German consumer mailbox market.
DOMAINS = (
    "gmail.com", "gmail.com", "web.de", "web.de", "gmx.de", "gmx.de", "gmx.net",
    "t-online.de", "outlook.com", "yahoo.de", "icloud.com", "posteo.de", "freenet.de",
)  # fmt: skip
DOMAIN_TYPOS = {
    "gmail.com": "gmial.com", "web.de": "wbe.de", "gmx.de": "gmx.ed", "gmx.net": "gmx.nte",
    "t-online.de": "t-onlien.de", "outlook.com": "outlok.com", "yahoo.de": "yaho.de",
    "icloud.com": "icluod.com", "posteo.de": "posteo.ed", "freenet.de": "frenet.de",
}  # fmt: skip
MOBILE_PREFIXES = ("151", "152", "157", "160", "162", "170", "171", "172", "175", "176", "178")
_CORE = 10_000_000  # seven core digits per mobile prefix: ~110 M distinct numbers
_SPREAD = 3_639_163  # coprime to 10: spreads consecutive people over the number space


def _chunk_sums(first_weight: int) -> dict[str, int]:
    """Weighted digit sums of every 1-3 digit string whose first digit has ``first_weight``."""
    sums = {}
    for width in (1, 2, 3):
        for value in range(10**width):
            chunk = f"{value:0{width}d}"
            weights = (first_weight, 4 - first_weight, first_weight)
            sums[chunk] = sum(int(d) * w for d, w in zip(chunk, weights, strict=False))
    return sums


_CHUNK_SUMS = (_chunk_sums(1), _chunk_sums(3))  # by parity of the chunk's position


def check_digit(digits: str) -> str:
    """Weighted (1, 3, 1, 3, …) digit sum mod 10: any single changed digit changes it.

    Computed three digits at a time from a table: the generator calls it millions of times.
    """
    total = 0
    for start in range(0, len(digits), 3):
        total += _CHUNK_SUMS[start % 2][digits[start : start + 3]]
    return str(-total % 10)


def email_of(person: int) -> str:
    """The canonical email of ``person``: letters, then the person number, then the domain."""
    first = FIRST_NAMES[person % len(FIRST_NAMES)]
    last = LAST_NAMES[(person // len(FIRST_NAMES)) % len(LAST_NAMES)]
    style = (person * 7) % 4
    local = (f"{first}.{last}", f"{first[0]}{last}", f"{last}.{first}", f"{first}_{last}")[style]
    return f"{local}{person}@{DOMAINS[(person * 11) % len(DOMAINS)]}"


def mobile_of(person: int) -> str:
    """The national significant number (``151…``) of ``person``'s German mobile phone."""
    prefix = MOBILE_PREFIXES[person % len(MOBILE_PREFIXES)]
    core = f"{(person // len(MOBILE_PREFIXES) * _SPREAD) % _CORE:07d}"
    return prefix + core + check_digit(prefix + core)


def loyalty_id_of(person: int) -> str:
    """The key node's loyalty id of member ``person``: ``KN`` + 9 digits + check digit."""
    digits = f"{person:09d}"
    return f"KN{digits}{check_digit(digits)}"


def messy_email(email: str, rng: random.Random) -> str:
    """The same address as a CRM might hold it: other case, surrounding blanks."""
    roll = rng.random()
    if roll < 0.15:
        email = email.upper()
    elif roll < 0.35:
        email = email[0].upper() + email[1:]
    roll = rng.random()
    if roll < 0.1:
        return f" {email} "
    if roll < 0.15:
        return f"{email}\t"
    return email


def messy_phone(nsn: str, rng: random.Random) -> str:
    """The same German mobile number in one of the formats people actually type."""
    prefix, rest = nsn[:3], nsn[3:]
    shape = rng.randrange(10)
    if shape == 0:
        return f"+49{nsn}"
    if shape == 1:
        return f"+49 {prefix} {rest}"
    if shape == 2:
        return f"0{prefix} {rest[:4]} {rest[4:]}"
    if shape == 3:
        return f"0{prefix}-{rest}"
    if shape == 4:
        return f"0{prefix}/{rest}"
    if shape == 5:
        return f"(0{prefix}) {rest}"
    if shape == 6:
        return f"0049 {prefix} {rest}"
    if shape == 7:
        return f"+49 (0){prefix} {rest}"
    if shape == 8:
        return f" 0{nsn} "
    return f"0049-{prefix}-{rest[:3]}-{rest[3:]}"


def messy_loyalty_id(loyalty_id: str, rng: random.Random) -> str:
    """The same loyalty id as typed at a partner's till: lower case, blanks, full width."""
    roll = rng.random()
    if roll < 0.2:
        return loyalty_id.lower()
    if roll < 0.3:
        return f" {loyalty_id} "
    if roll < 0.32:
        return loyalty_id.translate(_FULL_WIDTH)
    return loyalty_id


_FULL_WIDTH = {ord(c): ord(c) + 0xFEE0 for c in "0123456789KN"}


def email_typo(email: str, rng: random.Random) -> str:
    """A near miss: two adjacent letters of the name swapped, or a misspelt domain."""
    local, _, domain = email.partition("@")
    letters = [i for i in range(len(local) - 1) if local[i].isalpha() and local[i + 1].isalpha()]
    swaps = [i for i in letters if local[i] != local[i + 1]]
    if swaps and rng.random() < 0.7:
        i = rng.choice(swaps)
        local = local[:i] + local[i + 1] + local[i] + local[i + 2 :]
        return f"{local}@{domain}"
    return f"{local}@{DOMAIN_TYPOS[domain]}"


def digit_typo(digits: str, rng: random.Random, start: int) -> str:
    """A near miss: one digit at or after ``start`` replaced by another digit."""
    i = rng.randrange(start, len(digits))
    wrong = rng.choice([d for d in "0123456789" if d != digits[i]])
    return digits[:i] + wrong + digits[i + 1 :]
