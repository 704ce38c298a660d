"""The normalisation rules, pinned by the data files ``tests/vectors/identity_*.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from keynode.identity import InvalidIdentifier, get_profile

VECTORS = Path(__file__).parent.parent / "vectors"


def _cases() -> list[Any]:
    params = []
    for path in sorted(VECTORS.glob("identity_*.json")):
        data = json.loads(path.read_text())
        if "cases" not in data:
            continue
        for case in data["cases"]:
            params.append(pytest.param(data["kind"], case, id=f"{data['kind']}-{case['name']}"))
    return params


def _profile(case: dict[str, Any]) -> Any:
    return get_profile(
        case.get("profile", "default"),
        region=case.get("region"),
        gmail_rules=case.get("gmail_rules"),
    )


@pytest.mark.parametrize(("kind", "case"), _cases())
def test_vector(kind: str, case: dict[str, Any]) -> None:
    profile = _profile(case)
    if "canonical" in case:
        assert profile.canonical(kind, case["input"]) == case["canonical"].encode()
    else:
        with pytest.raises(InvalidIdentifier) as raised:
            profile.canonical(kind, case["input"])
        assert (raised.value.kind, raised.value.reason) == (kind, case["reason"])
        assert case["input"].strip() == "" or case["input"].strip() not in str(raised.value)


def test_every_kind_has_vectors() -> None:
    kinds = {param.values[0] for param in _cases()}
    assert kinds == {"email", "phone", "customer_id"}
