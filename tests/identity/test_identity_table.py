"""read_table: every row accounted for, CSV and Parquet alike, every bad input an InputError."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from keynode.errors import InputError
from keynode.identity import NormalisedTable, get_profile, read_table

PROFILE = get_profile()
COLUMNS = {"email": "Email", "phone": "Mobile"}
HEADER = ["Name", "Email", "Mobile", "segment", "spend"]
ROWS = [
    ["Alice", " Alice@Example.com", "0151 23456789", "gold", "120"],  # both keys good
    ["Bob", "bob@example.com", "12", "silver", "5"],  # bad phone, kept
    ["Carol", "carol.example.com", "", "gold", "7"],  # bad email, no phone: rejected
    ["Dan", "", " ", "bronze", "0"],  # nothing: rejected as missing
    ["Eve", "", "+49 160 1234567", "bronze", "9"],  # phone only
    ["Fay", "fay@", "n/a", "gold", "3"],  # both bad: rejected under the first reason
]


def _csv(path: Path, rows: list[list[str]] = ROWS, delimiter: str = ",") -> Path:
    path.write_text("\n".join(delimiter.join(row) for row in [HEADER, *rows]) + "\n")
    return path


def _check_example(table: NormalisedTable) -> None:
    assert table.records == [
        (b"email:alice@example.com", b"phone:+4915123456789"),
        (b"email:bob@example.com",),
        (b"phone:+491601234567",),
    ]
    assert table.row_numbers == [1, 2, 5]
    assert table.extra == {"segment": ["gold", "silver", "bronze"], "spend": [120, 5, 9]}
    assert (table.total_rows, table.rejected_rows, table.width) == (6, 3, 2)
    assert table.rejected_by_reason == {
        "email:missing_at": 1,
        "missing": 1,
        "email:invalid_domain": 1,
    }
    assert table.invalid_keys_by_kind == {"email": 2, "phone": 2}
    assert table.missing_keys_by_kind == {"email": 2, "phone": 2}
    assert table.profile_id == PROFILE.profile_id


def test_csv(tmp_path: Path) -> None:
    _check_example(read_table(_csv(tmp_path / "c.csv"), COLUMNS, PROFILE, ("segment", "spend")))


def test_gzipped_csv_with_semicolons(tmp_path: Path) -> None:
    plain = _csv(tmp_path / "plain.csv", delimiter=";")
    packed = tmp_path / "c.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    _check_example(read_table(packed, COLUMNS, PROFILE, ["segment", "spend"]))


def test_parquet(tmp_path: Path) -> None:
    columns = list(zip(*ROWS, strict=True))
    data = {name: list(values) for name, values in zip(HEADER, columns, strict=True)}
    data["spend"] = [int(v) for v in data["spend"]]
    pq.write_table(pa.table(data), tmp_path / "c.parquet")
    _check_example(read_table(tmp_path / "c.parquet", COLUMNS, PROFILE, ("segment", "spend")))


def test_parquet_integer_ids_become_text(tmp_path: Path) -> None:
    pq.write_table(pa.table({"card": [1234, None, 42]}), tmp_path / "ids.parquet")
    table = read_table(tmp_path / "ids.parquet", {"customer_id": "card"}, PROFILE)
    assert table.records == [(b"customer_id:1234",), (b"customer_id:42",)]
    assert table.rejected_by_reason == {"missing": 1}


def test_csv_keeps_leading_zeros_and_plus(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text("card,tel\n007,+4915123456789\n0042,015123456789\n")
    table = read_table(path, {"customer_id": "card", "phone": "tel"}, PROFILE)
    assert [record[0] for record in table.records] == [b"customer_id:007", b"customer_id:0042"]


def test_latin1_needs_its_encoding(tmp_path: Path) -> None:
    path = tmp_path / "l1.csv"
    path.write_bytes("email;ort\njürgen@web.de;Köln\n".encode("latin-1"))
    with pytest.raises(InputError, match="encoding"):
        read_table(path, {"email": "email"}, PROFILE)
    table = read_table(path, {"email": "email"}, PROFILE, ["ort"], encoding="latin-1")
    assert table.records == [("email:jürgen@web.de".encode(),)]
    assert table.extra == {"ort": ["Köln"]}


def test_summary_holds_counts_not_identifiers(tmp_path: Path) -> None:
    summary = read_table(_csv(tmp_path / "c.csv"), COLUMNS, PROFILE).summary()
    text = json.dumps(summary)
    assert summary["accepted_rows"] == 3
    assert "example.com" not in text and "2345" not in text


@pytest.mark.parametrize(
    ("name", "columns", "message"),
    [
        ("absent.csv", COLUMNS, "no such file: .*absent.csv"),
        ("c.xlsx", COLUMNS, r"unsupported file type: .*c.xlsx \(expected one of .csv"),
        ("c.csv", {"email": "E-Mail"}, "no column 'E-Mail'; available columns: 'Name', 'Email'"),
        ("c.csv", {"fax": "Mobile"}, "unknown identifier kind 'fax'"),
        ("c.csv", {}, "name at least one identifier column"),
    ],
)
def test_bad_input(tmp_path: Path, name: str, columns: dict[str, str], message: str) -> None:
    _csv(tmp_path / "c.csv")
    (tmp_path / "c.xlsx").write_bytes(b"PK")
    with pytest.raises(InputError, match=message):
        read_table(tmp_path / name, columns, PROFILE)


def test_missing_extra_column(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no column 'balance'"):
        read_table(_csv(tmp_path / "c.csv"), COLUMNS, PROFILE, ["balance"])


def test_malformed_csv(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("email,phone\na@b.de,1,2,3\n")
    with pytest.raises(InputError, match=r"cannot read .*bad\.csv"):
        read_table(path, {"email": "email"}, PROFILE)


def test_corrupt_parquet(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match=r"cannot read .*bad\.parquet"):
        read_table(path, {"email": "email"}, PROFILE)


def test_header_only(tmp_path: Path) -> None:
    table = read_table(_csv(tmp_path / "c.csv", rows=[]), COLUMNS, PROFILE, ["spend"])
    assert (table.records, table.total_rows, table.rejected_rows) == ([], 0, 0)
    assert table.extra == {"spend": []}


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(InputError, match=r"cannot read .*empty\.csv"):
        read_table(path, COLUMNS, PROFILE)
