"""``keynode pki``: an operator sets up a network, issues, inspects and revokes certificates."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from keynode.cli import pki as cli_pki


def _run(*argv: str) -> int:
    """Run ``keynode pki ...`` through this module's own parser (other commands may be absent)."""
    parser = argparse.ArgumentParser(prog="keynode")
    cli_pki.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["pki", *argv])
    result: int = args.run(args)
    return result


def test_operator_workflow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca, bank = tmp_path / "ca", tmp_path / "bank"
    assert _run("init", "--network", "retail", "--out", str(ca)) == 0
    assert (
        _run(
            "issue",
            "--ca",
            str(ca),
            "--role",
            "key-node",
            "--party",
            "retailer",
            "--out",
            str(tmp_path / "kn"),
            "--dns",
            "localhost",
            "--ip",
            "127.0.0.1",
        )
        == 0
    )
    assert (
        _run(
            "issue",
            "--ca",
            str(ca),
            "--role",
            "partner",
            "--party",
            "bank",
            "--out",
            str(bank),
            "--days",
            "30",
        )
        == 0
    )
    capsys.readouterr()

    assert _run("show", str(bank), "--ca", str(ca)) == 0
    shown = capsys.readouterr().out
    assert "identity:    partner 'bank'" in shown
    assert "keynode://retail/partner/bank" in shown
    assert "status:      valid for network 'retail'" in shown
    serial = next(line.split()[1] for line in shown.splitlines() if line.startswith("serial:"))

    assert _run("revoke", "--ca", str(ca), "--serial", serial) == 0
    assert f"revoked serial {serial}" in capsys.readouterr().out
    assert _run("show", str(bank / "tls.crt"), "--ca", str(ca)) == 1
    assert "INVALID: certificate revoked" in capsys.readouterr().out

    assert _run("show", str(tmp_path / "kn"), "--ca", str(bank)) == 0  # bank's ca.crt, no CRL
    assert _run("revoke", "--ca", str(ca), "--party", "bank") == 0
    assert "already revoked" in capsys.readouterr().out
    assert _run("revoke", "--ca", str(ca)) == 0
    assert "re-signed" in capsys.readouterr().out


def test_bad_role_and_serial_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        _run("issue", "--ca", "ca", "--role", "admin", "--party", "x", "--out", "o")
    assert exited.value.code == 2
    with pytest.raises(SystemExit):
        _run("revoke", "--ca", "ca", "--serial", "xyz")
