"""`audit verify`'s core: every tamper case of issue 4 is detected, each by name."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from auditlog_support import ORIGIN, START_MS, Network, make_signer

from keynode.auditlog import (
    ExportSource,
    NoteVerifier,
    PolicyLog,
    export_log,
    verify_log,
)
from keynode.auditlog.export import CHECKPOINTS, ENTRIES, LATEST
from keynode.auditlog.records import refused
from keynode.auditlog.state import load_trusted, save_trusted
from keynode.errors import VerificationError
from keynode.policy import default_policy

POLICIES = {default_policy().hash: default_policy()}


def build(path: Path, *, variant: bool = False) -> PolicyLog:
    """The standard story; ``variant`` changes one released count near the end."""
    log = PolicyLog.open(str(path), make_signer())
    network = Network(log)
    network.story()
    network.tick()
    network.release(network.grant("bank", "overlap.size"), released=99 if variant else 98)
    return log


def grow(log: PolicyLog) -> None:
    """Append one more valid decision, later than everything in the story."""
    log.append(
        refused("telco", "overlap.size", "not_enrolled", actor="broker", now_ms=START_MS + 10**6)
    )


def export(log: PolicyLog, directory: Path) -> Path:
    export_log(log.store, directory, log.store.checkpoints())
    return directory


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    log = build(tmp_path / "a.db")
    path = export(log, tmp_path / "export")
    log.close()
    return path


def verify(directory: Path, **kwargs: object) -> None:
    verify_log(
        ExportSource(directory), NoteVerifier(make_signer().verifier_key), POLICIES, **kwargs
    )  # type: ignore[arg-type]


def lines(directory: Path) -> list[bytes]:
    return (directory / ENTRIES).read_bytes().splitlines(keepends=True)


def write_lines(directory: Path, new: list[bytes]) -> None:
    (directory / ENTRIES).write_bytes(b"".join(new))


def test_untampered_export_verifies(exported: Path) -> None:
    verify(exported)


def test_untampered_store_verifies(tmp_path: Path) -> None:
    log = build(tmp_path / "a.db")
    verdict = verify_log(log.store, NoteVerifier(make_signer().verifier_key), POLICIES)
    assert verdict.checkpoint.size == log.size()
    log.close()


def _edit(d: Path) -> None:
    entries = lines(d)
    entries[6] = entries[6].replace(b'"released_count":120', b'"released_count":121')
    assert entries != lines(d)
    write_lines(d, entries)


def _delete(d: Path) -> None:
    entries = lines(d)
    del entries[4]
    write_lines(d, entries)


def _reorder(d: Path) -> None:
    entries = lines(d)
    entries[2], entries[3] = entries[3], entries[2]
    write_lines(d, entries)


def _insert(d: Path) -> None:
    entries = lines(d)
    entries.insert(3, entries[3])
    write_lines(d, entries)


def _append_uncovered(d: Path) -> None:
    entries = lines(d)
    write_lines(d, [*entries, entries[-1]])


def _truncate(d: Path) -> None:
    write_lines(d, lines(d)[:-2])


def _truncate_mid_entry(d: Path) -> None:
    (d / ENTRIES).write_bytes((d / ENTRIES).read_bytes()[:-20])


def _resign_latest_with_other_key(d: Path) -> None:
    other = make_signer(seed=9)  # same name, another key
    body = (d / LATEST).read_text().split("\n\n")[0] + "\n"
    (d / LATEST).write_text(other.sign_text(body))


def _other_key_in_history(d: Path) -> None:
    notes = (d / CHECKPOINTS).read_text().splitlines()
    note = json.loads(notes[2])["note"]
    body = note.split("\n\n")[0] + "\n"
    notes[2] = json.dumps({"note": make_signer(seed=9).sign_text(body)})
    (d / CHECKPOINTS).write_text("\n".join(notes) + "\n")


TAMPERING: dict[str, tuple[Callable[[Path], None], str]] = {
    "edited entry": (_edit, "entries 6..6 do not match the signed checkpoint of size 7"),
    "deleted entry": (_delete, "do not match the signed checkpoint"),
    "reordered entries": (_reorder, "entries 2..2 do not match"),
    "inserted entry": (_insert, "do not match the signed checkpoint"),
    "truncated log": (_truncate, "truncated"),
    "entry appended after the checkpoint": (
        _append_uncovered,
        "entry 20 and after are not covered",
    ),
    "entry cut in half": (_truncate_mid_entry, "cut short"),
    "checkpoint signed with another key": (
        _resign_latest_with_other_key,
        "latest checkpoint is not validly signed",
    ),
    "historic checkpoint signed with another key": (
        _other_key_in_history,
        "checkpoint #2 is not validly signed",
    ),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_tampering_is_detected(exported: Path, case: str) -> None:
    tamper, message = TAMPERING[case]
    tamper(exported)
    with pytest.raises(VerificationError, match=message):
        verify(exported)


def test_forked_log_is_detected(tmp_path: Path, exported: Path) -> None:
    """Two validly signed checkpoints of the same size with different roots."""
    fork = build(tmp_path / "fork.db", variant=True)
    with (exported / CHECKPOINTS).open("a") as out:
        out.write(json.dumps({"note": fork.latest_checkpoint()}) + "\n")
    fork.close()
    with pytest.raises(VerificationError, match="fork: two signed checkpoints of size"):
        verify(exported)


def test_rolled_back_log_is_detected(tmp_path: Path) -> None:
    """The auditor saw N entries last time; the log now shows fewer."""
    log = build(tmp_path / "a.db")
    old = export(log, tmp_path / "old")
    grow(log)  # the log grows...
    new = export(log, tmp_path / "new")
    log.close()
    verifier = NoteVerifier(make_signer().verifier_key)
    state = tmp_path / "state.json"
    save_trusted(state, verify_log(ExportSource(new), verifier, POLICIES).note)
    with pytest.raises(VerificationError, match="rolled back"):  # ...and is then shown shrunk
        verify(old, trusted=load_trusted(state, verifier))


def test_rewritten_history_is_detected(tmp_path: Path) -> None:
    """Same key, a different history that has grown past the checkpoint verified before."""
    honest = build(tmp_path / "a.db")
    trusted = verify_log(
        honest.store, NoteVerifier(make_signer().verifier_key), POLICIES
    ).checkpoint
    honest.close()
    rewritten = build(tmp_path / "b.db", variant=True)
    grow(rewritten)
    directory = export(rewritten, tmp_path / "rewritten")
    rewritten.close()
    (directory / CHECKPOINTS).unlink()  # as served: only the latest checkpoint
    with pytest.raises(
        VerificationError, match="not consistent with the checkpoint verified before"
    ):
        verify(directory, trusted=trusted)


def test_fork_against_the_saved_checkpoint_is_detected(tmp_path: Path) -> None:
    honest = build(tmp_path / "a.db")
    trusted = verify_log(
        honest.store, NoteVerifier(make_signer().verifier_key), POLICIES
    ).checkpoint
    honest.close()
    forked = build(tmp_path / "b.db", variant=True)
    directory = export(forked, tmp_path / "forked")
    forked.close()
    with pytest.raises(VerificationError, match="fork: the checkpoint of size"):
        verify(directory, trusted=trusted)


def test_non_canonical_entry_in_a_signed_log_is_named(tmp_path: Path) -> None:
    log = build(tmp_path / "a.db")
    size = log.size()
    body = next(log.entries(2, 3)).replace(b",", b", ", 1)
    log.store.append([body], make_signer().sign)
    with pytest.raises(
        VerificationError, match=f"entry {size}: entry is not in the canonical encoding"
    ):
        verify_log(log.store, NoteVerifier(make_signer().verifier_key), POLICIES)
    log.close()


def test_tampering_is_reported_before_the_policy_violation_it_causes(exported: Path) -> None:
    entries = lines(exported)
    entries[6] = entries[6].replace(b'"released_count":120', b'"released_count":12')  # below k
    write_lines(exported, entries)
    with pytest.raises(VerificationError, match="do not match the signed checkpoint"):
        verify(exported)


def test_saved_state_with_a_bad_signature_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    save_trusted(state, make_signer(seed=3).sign_text(f"{ORIGIN}\n1\n{'A' * 43}=\n"))
    with pytest.raises(VerificationError, match="saved audit state"):
        load_trusted(state, NoteVerifier(make_signer().verifier_key))
