"""`keynode serve` and `keynode match` as a user runs them, with their clear errors."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import keynode_serve

from keynode.cli.main import main


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    key_node = _write_csv(
        tmp_path / "loyalty.csv",
        ["customer_id", "email", "phone"],
        [[f"L{i}", f"member{i}@example.com", f"+49 30 {1000000 + i}"] for i in range(200)],
    )
    partner_rows = [[f" Member{i}@Example.com ", ""] for i in range(150, 250)]  # 50 shared
    partner_rows += [["", f"030 {1000000 + i}"] for i in range(10)]  # 10 shared by phone
    partner_rows += [["member1@exampel.com", ""], ["not an email", "n/a"]]  # typo; junk row
    partner = _write_csv(tmp_path / "bank.csv", ["Email", "Mobile"], partner_rows)
    return key_node, partner


@pytest.fixture
def server(files: tuple[Path, Path]) -> Iterator[str]:
    key_node, _ = files
    args = [str(key_node), "--email", "email", "--phone", "phone", "--listen", "127.0.0.1:0",
            "--workers", "1"]  # fmt: skip
    with keynode_serve(args, r"matching service on (127\.0\.0\.1:\d+)") as address:
        yield address


def test_serve_and_match_end_to_end(files: tuple[Path, Path], server: str, tmp_path: Path) -> None:
    _, partner = files
    out = tmp_path / "result.json"
    args = ["match", str(partner), "--partner", "bank", "--server", server, "--email", "Email",
            "--phone", "Mobile", "--membership", "--output", str(out),
            "--workers", "1"]  # fmt: skip
    assert main(args) == 0
    report = json.loads(out.read_text())
    assert report["overlap_records"] == 60
    assert report["key_node_identifiers"] == 400
    assert report["input"]["total_rows"] == 112
    assert report["input"]["rejected_rows"] == 1  # the junk row is counted, not dropped
    assert sorted(report["shared_rows"]) == [*range(1, 51), *range(101, 111)]


def test_profile_mismatch_is_a_clear_error(
    files: tuple[Path, Path], server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, partner = files
    args = ["match", str(partner), "--partner", "bank", "--server", server, "--email", "Email",
            "--region", "AT", "--workers", "1"]  # fmt: skip
    assert main(args) == 1
    assert "profile mismatch" in capsys.readouterr().err


def test_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["match", str(tmp_path / "nope.csv"), "--partner", "p", "--email", "e"]) == 1
    err = capsys.readouterr().err
    assert "nope.csv" in err and "Traceback" not in err


def test_wrong_column_names_list_the_available_ones(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, partner = files
    assert main(["match", str(partner), "--partner", "p", "--email", "mail"]) == 1
    err = capsys.readouterr().err
    assert "mail" in err and "Email" in err and "Mobile" in err


def test_no_identifier_column(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _, partner = files
    assert main(["match", str(partner), "--partner", "p"]) == 1
    assert "--email COLUMN" in capsys.readouterr().err


def test_unreachable_server(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _, partner = files
    args = ["match", str(partner), "--partner", "p", "--email", "Email", "--server",
            "127.0.0.1:9", "--workers", "1"]  # fmt: skip
    assert main(args) == 1
    assert "cannot reach the keynode server at 127.0.0.1:9" in capsys.readouterr().err


def test_serve_refuses_plaintext_off_loopback(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    key_node, _ = files
    args = ["serve", str(key_node), "--email", "email", "--listen", "0.0.0.0:0", "--workers", "1"]
    assert main(args) == 1
    assert "plaintext" in capsys.readouterr().err


def test_help_explains_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("serve", "match", "demo"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "ECDH-PSI" in out and "--membership" in out and "--large" in out
