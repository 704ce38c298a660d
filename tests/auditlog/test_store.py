"""The log store on SQLite and PostgreSQL: append-only, proofs, group commit, reopening."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from auditlog_support import make_signer

from keynode.auditlog import Entry, EntryType, NoteVerifier, PolicyLog, merkle
from keynode.auditlog.store import LogStore
from keynode.errors import InputError, NotFound
from keynode.storage import open_database


def refusal(i: int, partner: str = "bank") -> Entry:
    return Entry(
        EntryType.REFUSAL,
        i,
        "broker",
        partner,
        {"operation": "overlap.size", "reason": "rate_limited"},
    )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "log.db")
    else:
        yield request.getfixturevalue("postgres_dsn")


def test_append_read_and_prove(target: str) -> None:
    signer = make_signer()
    log = PolicyLog.open(target, signer)
    bodies = []
    for i in range(37):
        receipt = log.append(refusal(i))
        bodies.append(refusal(i).encode())
        assert receipt.index == i
    receipts = log.append_all([refusal(100 + i) for i in range(5)])
    bodies += [refusal(100 + i).encode() for i in range(5)]
    assert [r.index for r in receipts] == [37, 38, 39, 40, 41]
    assert len({r.checkpoint for r in receipts}) == 1  # one atomic batch, one checkpoint
    assert list(log.entries(0, 42)) == bodies
    cp = NoteVerifier(signer.verifier_key).verify(log.latest_checkpoint())
    assert (cp.size, cp.root_hash) == (42, merkle.root_hash(bodies))
    for index in (0, 17, 41):
        for size in (index + 1, 42):
            proof = log.inclusion_proof(index, size)
            merkle.verify_inclusion(
                merkle.leaf_hash(bodies[index]), index, size, proof, merkle.root_hash(bodies[:size])
            )
    for size1 in (0, 1, 5, 32, 42):
        proof = log.consistency_proof(size1, 42)
        merkle.verify_consistency(size1, 42, proof, merkle.root_hash(bodies[:size1]), cp.root_hash)
    assert len(list(log.store.checkpoints())) == 38
    log.close()


def test_reopened_store_continues_the_same_tree(target: str) -> None:
    signer = make_signer()
    first = PolicyLog.open(target, signer)
    first.append_all([refusal(i) for i in range(11)])
    first.close()
    second = PolicyLog.open(target, signer)
    second.append(refusal(11))
    bodies = list(second.entries(0, 12))
    cp = NoteVerifier(signer.verifier_key).verify(second.latest_checkpoint())
    assert cp.root_hash == merkle.root_hash(bodies)
    second.close()


def test_two_writers_on_one_database_stay_consistent(target: str) -> None:
    signer = make_signer()
    a, b = PolicyLog.open(target, signer), PolicyLog.open(target, signer)
    for i in range(6):
        (a if i % 2 else b).append(refusal(i))
    cp = NoteVerifier(signer.verifier_key).verify(a.latest_checkpoint())
    assert cp.root_hash == merkle.root_hash(list(a.entries(0, 6)))
    a.close()
    b.close()


def test_bad_ranges_and_sizes(target: str) -> None:
    log = PolicyLog.open(target, make_signer())
    with pytest.raises(NotFound):
        log.latest_checkpoint()
    log.append_all([refusal(i) for i in range(4)])
    with pytest.raises(NotFound):
        list(log.entries(0, 5))
    with pytest.raises(InputError):
        list(log.entries(3, 2))
    with pytest.raises(InputError):
        log.inclusion_proof(4, 4)
    with pytest.raises(NotFound):
        log.inclusion_proof(0, 5)
    with pytest.raises(InputError):
        log.consistency_proof(3, 2)
    with pytest.raises(InputError):
        log.append_all([])
    log.close()


def test_concurrent_appends_share_commits_and_lose_nothing(tmp_path: Path) -> None:
    signer = make_signer()
    log = PolicyLog.open(str(tmp_path / "log.db"), signer)
    results: dict[tuple[int, int], int] = {}

    def writer(thread: int) -> None:
        for i in range(60):
            results[(thread, i)] = log.append(refusal(i, f"p{thread}")).index

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == list(range(480))
    bodies = list(log.entries(0, 480))
    for (thread, i), index in results.items():
        assert bodies[index] == refusal(i, f"p{thread}").encode()
    checkpoints = list(log.store.checkpoints())
    assert len(checkpoints) < 480  # some commits carried several entries
    cp = NoteVerifier(signer.verifier_key).verify(checkpoints[-1])
    assert cp.root_hash == merkle.root_hash(bodies)
    log.close()


def test_origin_must_match_the_key_and_readers_cannot_append(tmp_path: Path) -> None:
    db = open_database(str(tmp_path / "log.db"))
    with pytest.raises(InputError):
        PolicyLog(LogStore(db, "another.example/log"), make_signer())
    with pytest.raises(InputError):
        LogStore(db).append([b"x"], make_signer().sign)
    db.close()


def test_opening_databases_fails_clearly(tmp_path: Path) -> None:
    from keynode.errors import Unavailable

    with pytest.raises(InputError):
        open_database(str(tmp_path / "no-such-dir" / "log.db"))
    with pytest.raises(InputError):
        open_database("")
    with pytest.raises(Unavailable):
        open_database("postgresql://nobody:wrong@127.0.0.1:1/none?connect_timeout=2")


def test_failed_transactions_roll_back(target: str) -> None:
    db = open_database(target)
    db.create_schema(["CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY)"])
    with pytest.raises(RuntimeError), db.transaction(write=True) as tx:
        tx.execute("INSERT INTO t (k) VALUES (?)", (1,))
        raise RuntimeError("abort")
    with db.transaction() as tx:
        assert tx.all("SELECT k FROM t") == []
    db.close()


def test_database_failures_become_unavailable(target: str) -> None:
    from keynode.errors import Unavailable

    db = open_database(target)
    with pytest.raises(Unavailable), db.transaction() as tx:
        tx.execute("SELECT * FROM no_such_table")
    with db.transaction() as tx:  # the connection is still usable afterwards
        assert tx.one("SELECT 1") == (1,)
    db.close()
