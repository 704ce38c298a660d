"""`keynode demo` end to end on a small network: every check it makes must hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keynode.cli.main import main


def test_demo_runs_the_network_and_verifies_the_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--members", "3000", "--out", str(out), "--workers", "1"]) == 0
    table = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["ok"]
    rows = {(r["partner"], r["action"]): r for r in report["rows"]}
    assert rows[("travel_agency", "overlap.size")]["outcome"] == "refused: level_too_low"
    assert rows[("mobile_operator", "overlap.membership")]["outcome"] == "refused: level_too_low"
    assert rows[("fuel", "overlap.size (after)")]["outcome"].startswith("refused")
    matched = [r for r in report["rows"] if r["overlap"] is not None]
    assert len(matched) == 5 and all(r["overlap"] == r["expected_overlap"] for r in matched)
    assert "audience.lease gold" in table
    # The exported log verifies offline with the published key.
    args = ["audit", "verify", "--export", str(out / "policy-log"), "--key-file",
            str(out / "log-verifier.pub"), "--no-save"]  # fmt: skip
    assert main(args) == 0
