"""The shipped policy file, and the strict loader that keeps typos from widening access."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest

from keynode.errors import InputError
from keynode.policy import LEVELS, default_policy, default_policy_bytes, load_policy

RAW: dict[str, Any] = json.loads(default_policy_bytes())


def test_default_policy_is_the_shipped_file() -> None:
    policy = default_policy()
    assert policy.hash == hashlib.sha256(default_policy_bytes()).hexdigest()
    assert policy.version == RAW["version"]
    assert sorted(policy.levels) == list(LEVELS)
    assert set(policy.operations) == set(RAW["operations"])


def test_capability_matrix_follows_the_file_and_levels_include_lower_ones() -> None:
    matrix = default_policy().capability_matrix()
    for level in LEVELS:
        expected = sorted(
            op for op, spec in RAW["operations"].items() if spec["min_level"] <= level
        )
        assert matrix[level] == expected
        if level > 1:
            assert set(matrix[level - 1]) <= set(matrix[level])


def test_each_level_adds_something() -> None:
    matrix = default_policy().capability_matrix()
    assert all(len(matrix[level]) > len(matrix[level - 1]) for level in range(2, 7))


def _mutated(path: list[str], value: Any) -> bytes:
    doc = copy.deepcopy(RAW)
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(doc).encode()


BAD = {
    "not json": b"{",
    "duplicate key": default_policy_bytes().replace(
        b'"operations": {', b'"operations": {"catalogue.read": {}, ', 1
    ),
    "a level twice": _mutated(["levels"], [*RAW["levels"], RAW["levels"][0]]),
    "unknown top-level field": _mutated(["allow_everything"], True),
    "missing limits": _mutated(["limits"], KeyError),
    "wrong format": _mutated(["format"], "keynode-policy/2"),
    "five levels": _mutated(["levels"], RAW["levels"][:5]),
    "level 7": _mutated(["operations", "overlap.size", "min_level"], 7),
    "level as string": _mutated(["operations", "overlap.size", "min_level"], "2"),
    "typo in an operation field": _mutated(["operations", "overlap.size", "min_levle"], 2),
    "operation name with spaces": _mutated(
        ["operations", "Overlap Size"], RAW["operations"]["overlap.size"]
    ),
    "cohort not boolean": _mutated(["operations", "overlap.size", "cohort"], 1),
    "k of zero": _mutated(["limits", "min_cohort"], 0),
    "negative cap": _mutated(["limits", "max_set_size"], -1),
    "rate limit without window": _mutated(["limits", "rate_limit"], {"count": 5}),
    "destroy_keys not a list": _mutated(["resignation", "destroy_keys"], "ecdh_scalar"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_malformed_policies_are_refused(case: str) -> None:
    with pytest.raises(InputError):
        load_policy(BAD[case])


def test_a_policy_with_no_operations_loads_and_allows_nothing() -> None:
    policy = load_policy(_mutated(["operations"], {}))
    assert policy.capability_matrix() == {level: [] for level in LEVELS}
