"""Entries have exactly one encoding, and no room for a customer identifier."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keynode.auditlog import Entry, EntryType, decode_entry
from keynode.errors import InputError, VerificationError

HASH = "ab" * 32
GRANT_ID = "cd" * 16

SAMPLES = {
    EntryType.POLICY_LOAD: ("", {"policy_hash": HASH, "policy_version": "v1"}),
    EntryType.ENROL: ("bank", {"identity_hash": HASH}),
    EntryType.LEVEL_CHANGE: ("bank", {"from_level": 1, "to_level": 2}),
    EntryType.GRANT: (
        "bank",
        {
            "grant_id": GRANT_ID,
            "operation": "overlap.size",
            "level": 2,
            "expires_ms": 9,
            "grant_hash": HASH,
        },
    ),
    EntryType.REFUSAL: ("bank", {"operation": "overlap.size", "reason": "level_too_low"}),
    EntryType.RELEASE: (
        "bank",
        {
            "grant_id": GRANT_ID,
            "operation": "overlap.size",
            "input_count": 5,
            "released_count": 3,
            "params_hash": HASH,
        },
    ),
    EntryType.REVOCATION: ("bank", {"grant_id": GRANT_ID, "reason": "operator"}),
    EntryType.RESIGNATION: ("bank", {"reason": "partner-request"}),
    EntryType.KEY_DESTRUCTION: ("bank", {"key_kind": "ecdh_scalar", "key_id": HASH}),
}


def sample(kind: EntryType) -> Entry:
    subject, params = SAMPLES[kind]
    return Entry(kind, 1_700_000_000_000, "broker", subject, params)


def test_every_entry_type_has_a_sample() -> None:
    assert set(SAMPLES) == set(EntryType)


@pytest.mark.parametrize("kind", list(EntryType))
def test_round_trip_is_exact(kind: EntryType) -> None:
    entry = sample(kind)
    encoded = entry.encode()
    assert decode_entry(encoded) == entry
    assert decode_entry(encoded).encode() == encoded


def test_known_encoding() -> None:
    entry = Entry(EntryType.LEVEL_CHANGE, 5, "operator", "bank", {"from_level": 1, "to_level": 2})
    assert entry.encode() == (
        b'{"actor":"operator","params":{"from_level":1,"to_level":2},'
        b'"subject":"bank","time_ms":5,"type":"level_change","v":1}'
    )


CANONICAL = Entry(
    EntryType.LEVEL_CHANGE, 5, "operator", "bank", {"from_level": 1, "to_level": 2}
).encode()

NON_CANONICAL = {
    "space after comma": CANONICAL.replace(b",", b", ", 1),
    "trailing newline": CANONICAL + b"\n",
    "keys out of order": b'{"params":{"from_level":1,"to_level":2},"actor":"operator",'
    b'"subject":"bank","time_ms":5,"type":"level_change","v":1}',
    "duplicate key": CANONICAL[:-1] + b',"v":1}',
    "float time": CANONICAL.replace(b'"time_ms":5', b'"time_ms":5.0'),
    "boolean level": CANONICAL.replace(b'"from_level":1', b'"from_level":true'),
    "string level": CANONICAL.replace(b'"from_level":1', b'"from_level":"1"'),
    "unknown field": CANONICAL[:-1] + b',"zz":1}',
    "missing field": CANONICAL.replace(b'"actor":"operator",', b""),
    "extra parameter": CANONICAL.replace(b'"to_level":2', b'"to_level":2,"x":1'),
    "unknown type": CANONICAL.replace(b"level_change", b"level_party"),
    "version 2": CANONICAL.replace(b'"v":1', b'"v":2'),
    "escaped ascii": CANONICAL.replace(b'"bank"', b'"\\u0062ank"'),
    "level 7": CANONICAL.replace(b'"to_level":2', b'"to_level":7'),
    "negative time": CANONICAL.replace(b'"time_ms":5', b'"time_ms":-5'),
    "not utf-8": CANONICAL.replace(b"bank", b"b\xffnk"),
    "not an object": b"[]",
    "NaN": CANONICAL.replace(b'"time_ms":5', b'"time_ms":NaN'),
    "empty": b"",
}


@pytest.mark.parametrize("mutation", list(NON_CANONICAL))
def test_non_canonical_bytes_are_rejected(mutation: str) -> None:
    with pytest.raises(VerificationError):
        decode_entry(NON_CANONICAL[mutation])


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_leak_a_raw_error(data: bytes) -> None:
    try:
        entry = decode_entry(data)
    except VerificationError:
        return
    assert entry.encode() == data


@pytest.mark.parametrize(
    ("subject", "params"),
    [
        ("alice@example.com", {"reason": "partner-request"}),  # an e-mail address as subject
        ("bank", {"reason": "Alice Smith"}),  # free text
        ("bank", {"reason": "+44 20 7946 0958"}),  # a phone number
        ("Bank", {"reason": "x"}),  # not lowercase
        ("", {"reason": "x"}),  # a partner entry needs a subject
    ],
    ids=["email", "free-text", "phone", "uppercase", "no-subject"],
)
def test_identifiers_and_free_text_cannot_be_logged(subject: str, params: dict[str, str]) -> None:
    with pytest.raises(InputError):
        Entry(EntryType.RESIGNATION, 1, "operator", subject, params)


def test_schema_is_enforced_at_construction() -> None:
    with pytest.raises(InputError):
        Entry(EntryType.ENROL, 1, "operator", "bank", {"identity_hash": "not-a-hash"})
    with pytest.raises(InputError):
        Entry(EntryType.ENROL, 1, "operator", "bank", {})
    with pytest.raises(InputError):
        Entry(EntryType.POLICY_LOAD, 1, "operator", "bank", SAMPLES[EntryType.POLICY_LOAD][1])
    with pytest.raises(InputError):
        Entry("no_such_type", 1, "operator", "bank", {})  # type: ignore[arg-type]
