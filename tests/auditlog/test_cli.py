"""`keynode audit ...` through its own argument parser (the top-level one may not load yet)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from auditlog_support import Network

from keynode.auditlog import NoteSigner, PolicyLog
from keynode.cli import audit
from keynode.errors import InputError


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="keynode")
    audit.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.run(args))


@pytest.fixture(autouse=True)
def private_state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Default state files go under the test's directory, never the user's home."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state-home"))


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    """A log database written with a key made by `audit keygen`; returns (db, key prefix)."""
    prefix = tmp_path / "log"
    assert run("audit", "keygen", "--name", "keynode.test/cli-log", "--out", str(prefix)) == 0
    signer = NoteSigner.from_signer_key(Path(f"{prefix}.key").read_text())
    assert Path(f"{prefix}.key").stat().st_mode & 0o077 == 0
    log = PolicyLog.open(str(tmp_path / "audit.db"), signer)
    Network(log).story()
    log.close()
    return tmp_path / "audit.db", prefix


def test_keygen_refuses_to_overwrite(setup: tuple[Path, Path]) -> None:
    _, prefix = setup
    with pytest.raises(InputError):
        run("audit", "keygen", "--name", "x", "--out", str(prefix))


def test_export_then_verify_then_detect_tampering(
    setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, prefix = setup
    out = tmp_path / "export"
    state = tmp_path / "state.json"
    assert run("audit", "export", str(out), "--db", str(db)) == 0
    verify = (
        "audit",
        "verify",
        "--export",
        str(out),
        "--key-file",
        f"{prefix}.pub",
        "--state",
        str(state),
    )
    assert run(*verify) == 0
    assert "OK: keynode.test/cli-log: 18 entries" in capsys.readouterr().out
    assert json.loads(state.read_text())["note"].startswith("keynode.test/cli-log\n18\n")
    assert run(*verify) == 0
    assert "consistent with the 18 entries verified before" in capsys.readouterr().out

    entries = (out / "entries.jsonl").read_bytes().splitlines(keepends=True)
    (out / "entries.jsonl").write_bytes(b"".join(entries[:3] + entries[4:]))
    assert run(*verify) == 1
    assert capsys.readouterr().out.startswith("FAIL: ")


def test_verify_against_the_running_service(
    setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from keynode.auditlog.store import LogStore
    from keynode.auditlog_service import serve_audit
    from keynode.storage import open_database

    db, prefix = setup
    server = serve_audit(LogStore(open_database(str(db))), "127.0.0.1:0", None)
    try:
        key = Path(f"{prefix}.pub").read_text().strip()
        code = run(
            "audit", "verify", "--server", f"127.0.0.1:{server.port}", "--key", key, "--no-save",
            "--state", str(tmp_path / "none.json"),
        )  # fmt: skip
    finally:
        server.stop(grace=None)
    assert code == 0
    assert "OK:" in capsys.readouterr().out
    assert not (tmp_path / "none.json").exists()


def test_verify_prints_json_verdicts(
    setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, prefix = setup
    key = Path(f"{prefix}.pub").read_text().strip()
    assert run("audit", "verify", "--db", str(db), "--key", key, "--no-save", "--json") == 0
    verdict = json.loads(capsys.readouterr().out)
    assert (verdict["ok"], verdict["size"], verdict["previous_size"]) == (True, 18, None)
    assert not (tmp_path / "state-home").exists()  # --no-save
    other = NoteSigner.generate("keynode.test/cli-log").verifier_key
    assert run("audit", "verify", "--db", str(db), "--key", other, "--no-save", "--json") == 1
    assert json.loads(capsys.readouterr().out) == {
        "ok": False,
        "error": "the latest checkpoint is not validly signed",
    }


def test_verify_with_the_wrong_key_fails(
    setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db, _ = setup
    other = NoteSigner.generate("keynode.test/cli-log").verifier_key
    assert run("audit", "verify", "--db", str(db), "--key", other, "--no-save") == 1
    assert "FAIL: the latest checkpoint is not validly signed" in capsys.readouterr().out


def test_show_filters_and_json(
    setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db, _ = setup
    assert (
        run("audit", "show", "--db", str(db), "--partner", "insurer", "--type", "release", "--json")
        == 0
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["type"], r["subject"]) for r in rows] == [("release", "insurer")]
    assert rows[0]["params"]["released_count"] == 7

    assert run("audit", "show", "--db", str(db), "--since", "2025-11-23T12:13:21+00:00") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["#", "time", "(UTC)"]
    assert all(" 2025-11-23T12:13:2" in row for row in table[1:]) and len(table) > 5

    assert run("audit", "show", "--db", str(db), "--until", "1763900000000") == 0
    assert len(capsys.readouterr().out.splitlines()) == 1  # the header: nothing before the start


def test_show_rejects_a_bad_time(setup: tuple[Path, Path]) -> None:
    db, _ = setup
    with pytest.raises(InputError):
        run("audit", "show", "--db", str(db), "--since", "yesterday")


def test_readers_never_create_a_database(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        run("audit", "show", "--db", str(tmp_path / "missing.db"))
    assert not (tmp_path / "missing.db").exists()
