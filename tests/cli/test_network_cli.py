"""A whole network through the command line, as its operator, a partner and an auditor would.

`keynode serve --certs` runs as a real process on a free port with mTLS; every other
command runs in-process against it with its own certificate.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import keynode_serve

from keynode.cli.main import main
from keynode.policy import default_policy_bytes


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture
def network(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[tuple[Path, str]]:
    ca = tmp_path / "ca"
    assert main(["pki", "init", "--network", "retail", "--out", str(ca)]) == 0
    assert main(["pki", "issue", "--ca", str(ca), "--role", "key-node", "--party", "retailer",
                 "--out", str(tmp_path / "kn"), "--ip", "127.0.0.1"]) == 0  # fmt: skip
    for role, party in [("operator", "olga"), ("partner", "bank"), ("auditor", "aude")]:
        out = str(tmp_path / party)
        assert main(["pki", "issue", "--ca", str(ca), "--role", role, "--party", party,
                     "--out", out]) == 0  # fmt: skip
    with (tmp_path / "loyalty.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["customer_id", "email", "segment"])
        w.writerows(
            [f"L{i}", f"m{i}@example.com", "gold" if i < 100 else "silver"] for i in range(300)
        )
    with (tmp_path / "bank.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Email"])
        w.writerows([f"M{i}@example.com"] for i in range(200, 300))  # 100 shared
    capsys.readouterr()
    args = [str(tmp_path / "loyalty.csv"), "--email", "email", "--certs", str(tmp_path / "kn"),
            "--state", str(tmp_path / "state"), "--listen", "127.0.0.1:0", "--workers", "1",
            "--segment-column", "segment", "--member-column", "customer_id"]  # fmt: skip
    with keynode_serve(args, r"on (127\.0\.0\.1:\d+) \(mTLS\)") as address:
        yield tmp_path, address


def test_operator_partner_and_auditor_commands(
    network: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root, address = network
    olga = ["--server", address, "--certs", str(root / "olga")]
    bank = ["--server", address, "--certs", str(root / "bank")]
    policy = root / "policy.json"
    policy.write_bytes(default_policy_bytes())

    code, out = _run(capsys, "policy", "load", str(policy), *olga)
    assert code == 0 and "loaded policy default-2026-11" in out
    code, out = _run(capsys, "partner", "add", "bank", "--cert", str(root / "bank/tls.crt"), *olga)
    assert code == 0 and "level 1" in out

    match = ["match", str(root / "bank.csv"), "--email", "Email", "--workers", "1",
             "--output", str(root / "out.json"), *bank]  # fmt: skip
    code, out = _run(capsys, *match)
    assert code == 1 and "level_too_low" in out  # level 1 moves no customer data

    assert _run(capsys, "partner", "level", "bank", "2", *olga)[0] == 0
    assert _run(capsys, *match)[0] == 0
    assert json.loads((root / "out.json").read_text())["overlap_records"] == 100
    code, out = _run(capsys, *match, "--membership")
    assert code == 1 and "level_too_low" in out

    code, out = _run(capsys, "standing", *bank)
    assert code == 0 and "level 2" in out and "overlap.size" in out
    code, out = _run(capsys, "partner", "list", "--json", *olga)
    assert json.loads(out)[0]["level"] == 2
    code, out = _run(capsys, "sessions", *olga)
    assert code == 0 and "no open sessions" in out
    code, out = _run(capsys, "policy", "show", *olga)
    assert code == 0 and "level 2 customer base matching" in out

    code, out = _run(capsys, "partner", "resign", "bank", "--reason", "contract-ended", *olga)
    assert code == 0 and "keys destroyed" in out and "ecdh_scalar" in out
    code, out = _run(capsys, *match)
    assert code == 1 and "revoked" in out

    code, out = _run(capsys, "audit", "verify", "--server", address, "--certs",
                     str(root / "aude"), "--key-file", str(root / "state/log-verifier.pub"),
                     "--state", str(root / "audit.state"))  # fmt: skip
    assert code == 0 and "OK:" in out, out


def test_operator_commands_need_an_operator_certificate(
    network: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root, address = network
    code, out = _run(capsys, "partner", "list", "--server", address, "--certs", str(root / "bank"))
    assert code == 1 and "partner role may not" in out
