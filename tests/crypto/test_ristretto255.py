"""ristretto255 and hash-to-group against RFC 9496, RFC 9380 and RFC 9497 vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rbcl
from hypothesis import given
from hypothesis import strategies as st

from keynode.crypto import ristretto255 as r255
from keynode.errors import ProtocolError

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "ristretto255.json").read_text())
XMD = VECTORS["expand_message_xmd_sha512"]
OPRF = VECTORS["oprf_blinded_element"]


def _scalar(k: int) -> bytes:
    return k.to_bytes(32, "little")


@pytest.mark.parametrize("k", range(1, 16))
def test_base_multiples_rfc9496_a1(k: int) -> None:
    base = bytes.fromhex(VECTORS["base_multiples"][1])
    assert r255.scalarmult(_scalar(k), base).hex() == VECTORS["base_multiples"][k]


@pytest.mark.parametrize("k", range(1, 16))
def test_base_multiples_are_accepted_as_peer_elements(k: int) -> None:
    r255.check_element(bytes.fromhex(VECTORS["base_multiples"][k]))


@pytest.mark.parametrize("case", VECTORS["invalid_encodings"], ids=lambda c: c["name"])
def test_invalid_encodings_rfc9496_a2_are_rejected(case: dict[str, str]) -> None:
    point = bytes.fromhex(case["hex"])
    with pytest.raises(ProtocolError, match=r"^invalid group element$"):
        r255.check_element(point)
    with pytest.raises(ProtocolError, match=r"^invalid group element$"):
        r255.scalarmult(r255.random_scalar(), point)


def test_identity_is_rejected_wherever_a_peer_sends_a_point() -> None:
    with pytest.raises(ProtocolError):
        r255.check_element(r255.IDENTITY)
    with pytest.raises(ProtocolError):
        r255.scalarmult(r255.random_scalar(), r255.IDENTITY)


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_wrong_length_points_are_rejected(length: int) -> None:
    with pytest.raises(ProtocolError):
        r255.check_element(b"\x01" * length)
    with pytest.raises(ProtocolError):
        r255.scalarmult(r255.random_scalar(), b"\x01" * length)


@pytest.mark.parametrize("case", VECTORS["one_way_map"], ids=lambda c: c["output"][:12])
def test_one_way_map_rfc9496_a3(case: dict[str, str]) -> None:
    assert r255.from_uniform_bytes(bytes.fromhex(case["input"])).hex() == case["output"]


@pytest.mark.parametrize("length", [0, 32, 63, 65])
def test_from_uniform_bytes_rejects_wrong_lengths(length: int) -> None:
    with pytest.raises(ValueError):
        r255.from_uniform_bytes(bytes(length))


@pytest.mark.parametrize("case", XMD["tests"], ids=lambda c: c["msg"][:8] or "empty")
def test_expand_message_xmd_rfc9380_k3(case: dict[str, str | int]) -> None:
    out = r255.expand_message_xmd(
        str(case["msg"]).encode(), XMD["dst"].encode(), int(case["len_in_bytes"])
    )
    assert out.hex() == case["uniform_bytes"]


@pytest.mark.parametrize("case", OPRF["tests"], ids=lambda c: c["input"][:8])
def test_hash_to_group_rfc9497_blinded_element(case: dict[str, str]) -> None:
    point = r255.hash_to_group(bytes.fromhex(case["input"]), OPRF["dst"].encode())
    assert r255.scalarmult(bytes.fromhex(OPRF["blind"]), point).hex() == case["blinded_element"]


@given(st.binary(max_size=300), st.binary(min_size=1, max_size=255))
def test_hasher_equals_reference_hash_to_group(msg: bytes, dst: bytes) -> None:
    assert r255.Hasher(dst)(msg) == r255.hash_to_group(msg, dst)


@given(st.binary(max_size=64))
def test_hash_to_group_separates_domains(msg: bytes) -> None:
    assert r255.hash_to_group(msg, b"keynode-a") != r255.hash_to_group(msg, b"keynode-b")


@given(st.binary(max_size=64))
def test_blinding_commutes(msg: bytes) -> None:
    a, b = r255.random_scalar(), r255.random_scalar()
    h = r255.hash_to_group(msg, b"keynode-test")
    assert r255.scalarmult(a, r255.scalarmult(b, h)) == r255.scalarmult(b, r255.scalarmult(a, h))


@pytest.mark.parametrize("dst", [b"", b"x" * 256])
def test_dst_length_is_checked(dst: bytes) -> None:
    with pytest.raises(ValueError):
        r255.expand_message_xmd(b"m", dst, 64)
    with pytest.raises(ValueError):
        r255.Hasher(dst)


def test_random_elements_are_valid_and_distinct() -> None:
    points = {r255.random_element() for _ in range(64)}
    assert len(points) == 64
    for p in points:
        assert rbcl.crypto_core_ristretto255_is_valid_point(p)
