"""The synthetic demo network: deterministic, well-formed, and its overlaps exactly as promised."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow.csv as pacsv
import pytest
from hypothesis import given
from hypothesis import strategies as st

from keynode.errors import InputError
from keynode.identity import NormalisedTable, get_profile, read_table
from keynode.synthetic import PARTNERS, DemoNetwork, PartyFile, generate_network, people
from keynode.synthetic.network import SEGMENTS

MEMBERS = 6_000
PROFILE = get_profile()


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> DemoNetwork:
    return generate_network(tmp_path_factory.mktemp("net"), members=MEMBERS, seed=11, parquet=True)


@pytest.fixture(scope="module")
def key_node_keys(network: DemoNetwork) -> set[bytes]:
    table = _read(network.key_node)
    return {key for record in table.records for key in record}


def _read(party: PartyFile, parquet: bool = False) -> NormalisedTable:
    path = party.parquet_path if parquet and party.parquet_path else party.path
    return read_table(path, party.columns, PROFILE, (party.value_column,))


def _matching_rows(table: NormalisedTable, keys: set[bytes]) -> list[int]:
    return [
        row
        for row, record in zip(table.row_numbers, table.records, strict=True)
        if any(key in keys for key in record)
    ]


def test_same_seed_same_files(network: DemoNetwork, tmp_path: Path) -> None:
    again = generate_network(tmp_path, members=MEMBERS, seed=11)
    for first, second in zip(
        (network.key_node, *network.partners), (again.key_node, *again.partners), strict=True
    ):
        assert first.path.read_bytes() == second.path.read_bytes()
    other = generate_network(tmp_path / "other", members=MEMBERS, seed=12)
    assert other.key_node.path.read_bytes() != network.key_node.path.read_bytes()


def test_key_node_columns(network: DemoNetwork) -> None:
    table = pacsv.read_csv(network.key_node.path)
    assert table.column_names == ["customer_id", "email", "phone", "segment", "spend"]
    assert table.num_rows == MEMBERS == network.key_node.rows
    assert set(table.column("segment").to_pylist()) == set(SEGMENTS)
    assert min(table.column("spend").to_pylist()) >= 0


def test_partner_columns(network: DemoNetwork) -> None:
    assert [p.name for p in network.partners] == [spec.name for spec in PARTNERS]
    for party, spec in zip(network.partners, PARTNERS, strict=True):
        table = pacsv.read_csv(party.path)
        assert table.column_names == [*spec.columns.values(), spec.value_column]
        assert table.num_rows == party.rows == round(spec.size * MEMBERS)
        assert min(table.column(spec.value_column).to_pylist()) >= 0


def test_key_node_rows_all_usable(network: DemoNetwork) -> None:
    table = _read(network.key_node)
    assert table.rejected_rows == 0
    junk = network.key_node.junk_rows
    assert 0 < junk <= sum(table.invalid_keys_by_kind.values()) <= 2 * junk


@pytest.mark.parametrize("index", range(len(PARTNERS)), ids=[s.name for s in PARTNERS])
def test_overlap_is_as_promised(
    network: DemoNetwork, key_node_keys: set[bytes], index: int
) -> None:
    party, spec = network.partners[index], PARTNERS[index]
    table = _read(party)
    matched = _matching_rows(table, key_node_keys)
    assert len(matched) == party.expected_overlap
    assert 0.65 * spec.overlap <= len(matched) / party.rows <= spec.overlap
    # Junk rows, and only they, are rejected; near misses are valid and never match.
    assert table.rejected_rows == party.junk_rows > 0
    assert party.near_miss_rows
    assert set(party.near_miss_rows) <= set(table.row_numbers)
    assert not set(party.near_miss_rows) & set(matched)


def test_parquet_copy_reads_the_same(network: DemoNetwork) -> None:
    for party in (network.key_node, network.partners[0]):
        assert _read(party, parquet=True).records == _read(party).records


def test_manifest_file(network: DemoNetwork) -> None:
    manifest = json.loads((network.directory / "manifest.json").read_text())
    assert manifest["members"] == MEMBERS
    assert [p["expected_overlap"] for p in manifest["partners"]] == [
        p.expected_overlap for p in network.partners
    ]


@pytest.mark.parametrize("members", [0, -5, 10_000_000])
def test_member_count_is_bounded(tmp_path: Path, members: int) -> None:
    with pytest.raises(InputError, match="members must be between 1 and"):
        generate_network(tmp_path, members=members)


@given(st.text("0123456789", min_size=1, max_size=14), st.data())
def test_check_digit_catches_any_single_digit_typo(digits: str, data: st.DataObject) -> None:
    typo = people.digit_typo(digits, random.Random(data.draw(st.integers())), 0)
    assert people.check_digit(typo) != people.check_digit(digits)


def test_near_miss_identifiers_are_nobody_s() -> None:
    rng = random.Random(5)
    for person in range(0, 50_000, 97):
        phone, loyalty_id = people.mobile_of(person), people.loyalty_id_of(person)
        typo_phone = people.digit_typo(phone, rng, 3)
        typo_id = people.digit_typo(loyalty_id, rng, 2)
        # Every identifier carries a check digit; a single typo breaks it.
        assert people.check_digit(phone[:-1]) == phone[-1]
        assert people.check_digit(loyalty_id[2:-1]) == loyalty_id[-1]
        assert people.check_digit(typo_phone[:-1]) != typo_phone[-1]
        assert people.check_digit(typo_id[2:-1]) != typo_id[-1]
        assert people.email_typo(people.email_of(person), rng) != people.email_of(person)
