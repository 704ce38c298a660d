"""The policy log's entries: typed, versioned records with exactly one encoding.

An entry is ``{"actor", "params", "subject", "time_ms", "type", "v"}`` serialised as
canonical JSON: keys sorted, no whitespace, ASCII only, integers only (no floats).
Every value is constrained by a per-type schema to short tokens, hex hashes, levels
and counts, so an entry has no place for free text and cannot carry a customer
identifier. :func:`decode_entry` accepts only bytes that :meth:`Entry.encode` would
produce; anything else (other key order, spaces, duplicates, unknown fields or types,
another version) is a :class:`~keynode.errors.VerificationError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from keynode.errors import InputError, VerificationError
from keynode.policy.model import TOKEN

ENTRY_VERSION = 1
MAX_ENTRY_BYTES = 4096
_MAX_INT = 2**63 - 1

_HASH = re.compile(r"[0-9a-f]{64}")
_ID = re.compile(r"[0-9a-f]{32}")


class EntryType(StrEnum):
    """What kind of decision an entry records."""

    POLICY_LOAD = "policy_load"
    ENROL = "enrol"
    LEVEL_CHANGE = "level_change"
    GRANT = "grant"
    REFUSAL = "refusal"
    RELEASE = "release"
    REVOCATION = "revocation"
    RESIGNATION = "resignation"
    KEY_DESTRUCTION = "key_destruction"


class _Kind(StrEnum):
    TOKEN = "token"  # a lowercase token (TOKEN)
    HASH = "hash"  # 64 lowercase hex digits: a SHA-256 of parameters, a file, a key
    ID = "id"  # 32 lowercase hex digits: a grant id (its nonce)
    LEVEL = "level"  # a sharing level, 1..6
    COUNT = "count"  # a non-negative integer: a count, a size, a time in ms


_SCHEMA: dict[EntryType, dict[str, _Kind]] = {
    EntryType.POLICY_LOAD: {"policy_hash": _Kind.HASH, "policy_version": _Kind.TOKEN},
    EntryType.ENROL: {"identity_hash": _Kind.HASH},
    EntryType.LEVEL_CHANGE: {"from_level": _Kind.LEVEL, "to_level": _Kind.LEVEL},
    EntryType.GRANT: {
        "grant_id": _Kind.ID,
        "operation": _Kind.TOKEN,
        "level": _Kind.LEVEL,
        "expires_ms": _Kind.COUNT,
        "grant_hash": _Kind.HASH,
    },
    EntryType.REFUSAL: {"operation": _Kind.TOKEN, "reason": _Kind.TOKEN},
    EntryType.RELEASE: {
        "grant_id": _Kind.ID,
        "operation": _Kind.TOKEN,
        "input_count": _Kind.COUNT,
        "released_count": _Kind.COUNT,
        "params_hash": _Kind.HASH,
    },
    EntryType.REVOCATION: {"grant_id": _Kind.ID, "reason": _Kind.TOKEN},
    EntryType.RESIGNATION: {"reason": _Kind.TOKEN},
    EntryType.KEY_DESTRUCTION: {"key_kind": _Kind.TOKEN, "key_id": _Kind.HASH},
}

PARTNERLESS = frozenset({EntryType.POLICY_LOAD})
"""Entry types about the network as a whole: their subject is the empty string."""


_PATTERNS = {_Kind.TOKEN: TOKEN, _Kind.HASH: _HASH, _Kind.ID: _ID}
_TYPES = {str(t): t for t in EntryType}


def _valid(kind: _Kind, value: object) -> bool:
    if type(value) is int:
        if kind is _Kind.COUNT:
            return 0 <= value <= _MAX_INT
        return kind is _Kind.LEVEL and 1 <= value <= 6
    pattern = _PATTERNS.get(kind)
    return pattern is not None and isinstance(value, str) and pattern.fullmatch(value) is not None


@dataclass(frozen=True)
class Entry:
    """One decision: what happened (``type``), when, who decided, about whom, with what.

    Construction validates against the schema and raises :class:`InputError`, so an
    invalid entry can never be appended.
    """

    type: EntryType
    time_ms: int
    actor: str
    subject: str
    params: Mapping[str, int | str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            kind = EntryType(self.type)
        except ValueError:
            raise InputError(f"unknown entry type {self.type!r}") from None
        object.__setattr__(self, "type", kind)
        object.__setattr__(self, "params", dict(self.params))
        if not _valid(_Kind.COUNT, self.time_ms):
            raise InputError("entry time must be a non-negative integer of milliseconds")
        if not _valid(_Kind.TOKEN, self.actor):
            raise InputError(f"invalid actor {self.actor!r}")
        if kind in PARTNERLESS:
            if self.subject != "":
                raise InputError(f"a {kind} entry has no subject")
        elif not _valid(_Kind.TOKEN, self.subject):
            raise InputError(f"invalid subject {self.subject!r}")
        schema = _SCHEMA[kind]
        if set(self.params) != set(schema):
            raise InputError(f"a {kind} entry takes exactly the parameters {sorted(schema)}")
        for name, param_kind in schema.items():
            if not _valid(param_kind, self.params[name]):
                raise InputError(f"invalid {name} for a {kind} entry")

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON-ready dict (the canonical encoding's content)."""
        return {
            "actor": self.actor,
            "params": dict(self.params),
            "subject": self.subject,
            "time_ms": self.time_ms,
            "type": str(self.type),
            "v": ENTRY_VERSION,
        }

    def encode(self) -> bytes:
        """The one canonical encoding: the bytes that the Merkle tree hashes."""
        return _canonical(self.to_json())

    def param_int(self, name: str) -> int:
        """A numeric parameter (levels, counts, times)."""
        value = self.params[name]
        assert isinstance(value, int)
        return value

    def param_str(self, name: str) -> str:
        """A string parameter (tokens, hashes, ids)."""
        value = self.params[name]
        assert isinstance(value, str)
        return value


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _canonical(obj: Mapping[str, Any]) -> bytes:
    return _ENCODER.encode(obj).encode()


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate key")
    return out


def _no_floats(text: str) -> Any:
    raise ValueError("floats are not canonical")


_DECODER = json.JSONDecoder(
    object_pairs_hook=_no_duplicates, parse_float=_no_floats, parse_constant=_no_floats
)


def decode_entry(data: bytes) -> Entry:
    """Parse canonical entry bytes; anything non-canonical raises VerificationError."""
    try:
        if len(data) > MAX_ENTRY_BYTES:
            raise ValueError("too long")
        obj = _DECODER.decode(data.decode("ascii"))
        if not isinstance(obj, dict) or set(obj) != {
            "actor", "params", "subject", "time_ms", "type", "v"
        }:  # fmt: skip
            raise ValueError("wrong fields")
        if type(obj["v"]) is not int or obj["v"] != ENTRY_VERSION:
            raise ValueError("unknown version")
        kind = _TYPES.get(obj["type"]) if isinstance(obj["type"], str) else None
        if not isinstance(obj["params"], dict) or kind is None:
            raise ValueError("wrong type")
        entry = Entry(
            type=kind,
            time_ms=obj["time_ms"],
            actor=obj["actor"],
            subject=obj["subject"],
            params=obj["params"],
        )
        if entry.encode() != data:
            raise ValueError("not canonical")
    except (ValueError, UnicodeDecodeError, InputError) as exc:
        raise VerificationError(f"entry is not in the canonical encoding ({exc})") from None
    return entry
