"""``keynode aggregate`` against a live key node: JSON per segment, and clear input errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from aggregates_support import BANK_IDS, BANK_VALUES, AggregateNode, expected, spend

from keynode.cli.main import main
from keynode.cli.serve import _aggregates
from keynode.crypto.batch import GroupPool
from keynode.identity import get_profile, read_table


@pytest.fixture
def profile_id() -> str:
    return get_profile("default").profile_id


def write_bank(path: Path, rows: list[tuple[int, str, str]]) -> Path:
    lines = ["email,spend,visits"] + [f"M{i}@Example.com,{a},{b}" for i, a, b in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def args(live: AggregateNode, csv: Path, *extra: str) -> list[str]:
    return [
        "aggregate", str(csv), "--email", "email", "--value", "spend", "--value", "visits",
        "--bits", "16", "--bits", "8", "--certs", str(live.certs("bank")),
        "--server", live.target, "--server-name", "localhost", "--no-progress", *extra,
    ]  # fmt: skip


def test_the_report_has_every_segment_released_or_marked_suppressed(
    live: AggregateNode, tmp_path: Path
) -> None:
    rows = [(i, str(a), str(b)) for i, (a, b) in zip(BANK_IDS, BANK_VALUES, strict=True)]
    csv = write_bank(tmp_path / "bank.csv", rows)
    out = tmp_path / "result.json"
    assert main(args(live, csv, "--output", str(out))) == 0
    report = json.loads(out.read_text())
    assert report["min_cohort"] == 50 and report["key_bits"] == 2048
    want = expected(BANK_IDS, BANK_VALUES, 50)
    got = {
        s["segment"]: (tuple(s["sums"].values()), s["count"]) if not s["suppressed"] else None
        for s in report["segments"]
    }
    assert got == want
    assert report["columns"] == [{"name": "spend", "bits": 16}, {"name": "visits", "bits": 8}]


@pytest.mark.parametrize(
    ("cell", "bits"), [("70000", "16"), ("-1", "16"), ("12.5", "16"), ("", "16"), ("3", "70")]
)
def test_a_value_outside_its_column_is_an_error_naming_the_row(
    live: AggregateNode, tmp_path: Path, capsys: pytest.CaptureFixture[str], cell: str, bits: str
) -> None:
    csv = write_bank(tmp_path / "bank.csv", [(300, "1", "1"), (301, cell, "1")])
    argv = args(live, csv)
    argv[argv.index("16")] = bits
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "row 2, column 'spend'" in err if bits == "16" else "between 1 and 64" in err


def test_serve_builds_the_aggregates_engine_from_the_segment_column(tmp_path: Path) -> None:
    csv = tmp_path / "loyalty.csv"
    csv.write_text("email,segment\na@example.com,gold\nb@example.com,\nc@example.com,silver\n")
    profile = get_profile("default")
    table = read_table(csv, {"email": "email"}, profile, ("segment",))
    with GroupPool(1) as pool:
        none = _aggregates(
            argparse.Namespace(segment_column=None, value_column=None), table, "p", pool
        )
        engine = _aggregates(
            argparse.Namespace(segment_column="segment", value_column=None), table, "p", pool
        )
    assert none is None and engine is not None and engine.values is None
    assert engine.catalogue == ("gold", "silver") and engine.key_node_elements == 2


def test_serve_reads_the_value_column_for_key_node_values(tmp_path: Path) -> None:
    csv = tmp_path / "loyalty.csv"
    csv.write_text("email,segment,spend\na@example.com,gold,12\nb@example.com,,\n")
    table = read_table(csv, {"email": "email"}, get_profile("default"), ("segment", "spend"))
    namespace = argparse.Namespace(segment_column="segment", value_column="spend")
    with GroupPool(1) as pool:
        engine = _aggregates(namespace, table, "p", pool)
    assert engine is not None and engine.values is not None
    assert engine.values.table.values == (12,)


def test_key_node_values_report_the_sum_over_the_overlap(
    live: AggregateNode, tmp_path: Path
) -> None:
    csv = write_bank(tmp_path / "bank.csv", [(i, "0", "0") for i in BANK_IDS])
    out = tmp_path / "spend.json"
    argv = [
        "aggregate", str(csv), "--email", "email", "--key-node-values",
        "--certs", str(live.certs("bank")), "--server", live.target,
        "--server-name", "localhost", "--no-progress", "--output", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(out.read_text())
    shared = [i for i in BANK_IDS if i < 400]
    assert (report["count"], report["sums"]) == (len(shared), [sum(map(spend, shared))])
    assert report["operation"] == "aggregate.keynode_values" and report["min_cohort"] == 50
