"""The policy document: levels, the capability matrix and limits, loaded from data.

A policy is a versioned JSON file (``format: keynode-policy/1``) that the operator edits
and loads; :data:`DEFAULT_POLICY_FILE` is the one shipped with keynode. The loader is
strict — unknown or missing fields are errors, never ignored — because a typo in a
policy must not silently widen what partners may do. The policy's identity is the
SHA-256 of the file's bytes, which is what the policy log records when it is loaded.

The capability matrix is one number per operation, ``min_level``: a level allows every
operation whose ``min_level`` is at or below it, so a level includes everything below it
by construction.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from keynode.errors import InputError

POLICY_FORMAT = "keynode-policy/1"
LEVELS = range(1, 7)
DEFAULT_POLICY_FILE = "default_policy.json"

TOKEN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
"""Names of partners, operations, versions, key kinds and reasons: lowercase tokens.

The policy log accepts only such tokens, so nothing free-form (like a customer's
e-mail address) can be written into it."""


@dataclass(frozen=True)
class OperationRule:
    """One row of the capability matrix."""

    name: str
    min_level: int
    cohort: bool  # releases counts/aggregates: at least min_cohort customers each
    hashed: bool  # uses the weaker hashed overlap (a policy may forbid it)
    description: str


@dataclass(frozen=True)
class Window:
    """At most ``count`` events per partner in any sliding ``window_ms``."""

    count: int
    window_ms: int


@dataclass(frozen=True)
class Limits:
    """Network-wide bounds on every release."""

    min_cohort: int
    max_set_size: int
    hashed_overlap_allowed: bool
    grant_ttl_ms: int
    rate_limit: Window  # grants per partner
    query_budget: Window  # releases per partner


@dataclass(frozen=True)
class Policy:
    """A loaded policy; build it with :func:`load_policy`, never by hand."""

    version: str
    hash: str
    levels: Mapping[int, str]
    operations: Mapping[str, OperationRule]
    limits: Limits
    destroy_keys: tuple[str, ...]

    def rule(self, operation: str) -> OperationRule | None:
        """The rule for ``operation``, or None if the policy does not know it."""
        return self.operations.get(operation)

    def allows(self, level: int, operation: str) -> bool:
        """Whether ``level`` includes ``operation`` (unknown levels and operations: no)."""
        rule = self.operations.get(operation)
        return level in self.levels and rule is not None and rule.min_level <= level

    def capability_matrix(self) -> dict[int, list[str]]:
        """Level -> the operations it allows, sorted: the matrix as a table."""
        return {
            level: sorted(op for op in self.operations if self.allows(level, op))
            for level in sorted(self.levels)
        }


def _obj(value: Any, where: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(f"policy: {where} must be an object")
    if set(value) != keys:
        missing, extra = sorted(keys - set(value)), sorted(set(value) - keys)
        raise InputError(f"policy: {where}: missing {missing}, unknown {extra}")
    return value


def _int(value: Any, where: str, low: int = 1) -> int:
    if type(value) is not int or value < low:
        raise InputError(f"policy: {where} must be an integer >= {low}")
    return value


def _bool(value: Any, where: str) -> bool:
    if type(value) is not bool:
        raise InputError(f"policy: {where} must be true or false")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise InputError(f"policy: {where} must be a non-empty string")
    return value


def _window(value: Any, where: str) -> Window:
    obj = _obj(value, where, {"count", "window_s"})
    return Window(_int(obj["count"], f"{where}.count"), 1000 * _int(obj["window_s"], where))


def _token(value: Any, where: str) -> str:
    text = _str(value, where)
    if not TOKEN.fullmatch(text):
        raise InputError(f"policy: {where} {text!r} must be a lowercase token")
    return text


def _operations(value: Any) -> dict[str, OperationRule]:
    if not isinstance(value, dict):
        raise InputError("policy: operations must be an object")
    out = {}
    for name, spec in value.items():
        where = f"operations.{name}"
        obj = _obj(spec, where, {"min_level", "cohort", "hashed", "description"})
        level = _int(obj["min_level"], f"{where}.min_level")
        if level not in LEVELS:
            raise InputError(f"policy: {where}.min_level must be 1..6")
        out[_token(name, "operation")] = OperationRule(
            name=name,
            min_level=level,
            cohort=_bool(obj["cohort"], f"{where}.cohort"),
            hashed=_bool(obj["hashed"], f"{where}.hashed"),
            description=_str(obj["description"], f"{where}.description"),
        )
    return out


def _levels(value: Any) -> dict[int, str]:
    if not isinstance(value, list):
        raise InputError("policy: levels must be a list")
    levels = {}
    for item in value:
        obj = _obj(item, "levels[]", {"level", "name"})
        levels[_int(obj["level"], "levels[].level")] = _str(obj["name"], "levels[].name")
    if sorted(levels) != list(LEVELS) or len(value) != len(LEVELS):
        raise InputError("policy: levels must name each of the six levels 1..6 once")
    return levels


_LIMIT_FIELDS = {
    "min_cohort",
    "max_set_size",
    "hashed_overlap_allowed",
    "grant_ttl_s",
    "rate_limit",
    "query_budget",
}


def _limits(value: Any) -> Limits:
    lim = _obj(value, "limits", _LIMIT_FIELDS)
    return Limits(
        min_cohort=_int(lim["min_cohort"], "limits.min_cohort"),
        max_set_size=_int(lim["max_set_size"], "limits.max_set_size"),
        hashed_overlap_allowed=_bool(
            lim["hashed_overlap_allowed"], "limits.hashed_overlap_allowed"
        ),
        grant_ttl_ms=1000 * _int(lim["grant_ttl_s"], "limits.grant_ttl_s"),
        rate_limit=_window(lim["rate_limit"], "limits.rate_limit"),
        query_budget=_window(lim["query_budget"], "limits.query_budget"),
    )


def _destroy_keys(value: Any) -> tuple[str, ...]:
    keys = _obj(value, "resignation", {"destroy_keys"})["destroy_keys"]
    if not isinstance(keys, list):
        raise InputError("policy: resignation.destroy_keys must be a list")
    return tuple(sorted({_token(k, "resignation.destroy_keys[]") for k in keys}))


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise InputError("policy: a key appears twice in one object")
    return out


_TOP_FIELDS = {"format", "version", "levels", "operations", "limits", "resignation"}


def load_policy(data: bytes) -> Policy:
    """Parse and validate a policy file's bytes; raise InputError naming the bad field."""
    try:
        doc = json.loads(data, object_pairs_hook=_unique_keys)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"policy is not valid JSON: {exc}") from None
    top = _obj(doc, "the document", _TOP_FIELDS)
    if top["format"] != POLICY_FORMAT:
        raise InputError(f"policy: format must be {POLICY_FORMAT!r}")
    return Policy(
        version=_token(top["version"], "version"),
        hash=hashlib.sha256(data).hexdigest(),
        levels=_levels(top["levels"]),
        operations=_operations(top["operations"]),
        limits=_limits(top["limits"]),
        destroy_keys=_destroy_keys(top["resignation"]),
    )


def load_policy_file(path: str | Path) -> Policy:
    """Load a policy from a file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read policy file {path}: {exc}") from None
    return load_policy(data)


def default_policy_bytes() -> bytes:
    """The bytes of the policy shipped with keynode."""
    return resources.files("keynode.policy").joinpath(DEFAULT_POLICY_FILE).read_bytes()


def default_policy() -> Policy:
    """The policy shipped with keynode."""
    return load_policy(default_policy_bytes())
