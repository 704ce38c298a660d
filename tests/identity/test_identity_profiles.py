"""Profiles: their ids pin the rules, options change the id, bad names and regions fail."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from keynode.errors import InputError
from keynode.identity import (
    BUILTIN_PROFILES,
    KeyKind,
    Profile,
    add_profile_arguments,
    get_profile,
    profile_from_args,
)

PROFILES = json.loads((Path(__file__).parent.parent / "vectors/identity_profiles.json").read_text())


@pytest.mark.parametrize(
    "row", PROFILES["profiles"], ids=lambda r: f"{r['profile']}-{r['region']}-{r['gmail_rules']}"
)
def test_profile_id_is_pinned(row: dict[str, Any]) -> None:
    profile = get_profile(row["profile"], region=row["region"], gmail_rules=row["gmail_rules"])
    assert profile.rules == row["rules"]
    assert profile.profile_id == row["profile_id"]


def test_every_option_changes_the_id() -> None:
    base = get_profile("default")
    variants = [
        base,
        dataclasses.replace(base, region="AT"),
        dataclasses.replace(base, gmail_rules=True),
        dataclasses.replace(base, casefold_ids=False),
        dataclasses.replace(base, name="other"),
    ]
    assert len({profile.profile_id for profile in variants}) == len(variants)


def test_same_rules_same_id() -> None:
    assert get_profile("default", region="de").profile_id == get_profile("default").profile_id
    assert Profile("default").profile_id == BUILTIN_PROFILES["default"].profile_id


def test_profile_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_profile().region = "AT"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: get_profile("nope"), "unknown profile 'nope' (built-in: default, exact-ids)"),
        (lambda: get_profile(region="XX"), "unknown phone region 'XX'"),
        (lambda: get_profile(region="Germany"), "unknown phone region"),
        (lambda: Profile("Bad Name"), "invalid profile name"),
    ],
)
def test_bad_profile_input(call: Any, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_unknown_kind_is_input_error() -> None:
    with pytest.raises(InputError, match="unknown identifier kind 'fax'"):
        get_profile().canonical("fax", "123")


def test_kind_accepts_enum_and_string() -> None:
    profile = get_profile()
    assert profile.canonical(KeyKind.EMAIL, "A@B.DE") == profile.canonical("email", "a@b.de")


def _parse(*argv: str) -> Profile:
    parser = argparse.ArgumentParser()
    add_profile_arguments(parser)
    return profile_from_args(parser.parse_args(argv))


def test_cli_defaults_to_default_profile() -> None:
    assert _parse() == get_profile("default")


def test_cli_flags_override() -> None:
    profile = _parse("--profile", "exact-ids", "--region", "at", "--gmail-rules")
    assert (profile.name, profile.region, profile.gmail_rules, profile.casefold_ids) == (
        "exact-ids",
        "AT",
        True,
        False,
    )
    assert _parse("--no-gmail-rules") == get_profile("default")


def test_cli_rejects_unknown_profile(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parse("--profile", "nope")
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_cli_unknown_region_is_input_error() -> None:
    with pytest.raises(InputError, match="unknown phone region 'ZZ'"):
        _parse("--region", "ZZ")
