"""A writer killed with SIGKILL mid-stream loses no acknowledged entry and leaves no half one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from auditlog_support import make_signer

from keynode.auditlog import Entry, EntryType, NoteVerifier, PolicyLog, decode_entry, merkle

WRITER = textwrap.dedent(
    """
    import sys, threading
    from keynode.auditlog import Entry, EntryType, NoteSigner, PolicyLog

    log = PolicyLog.open(sys.argv[1], NoteSigner.from_signer_key(sys.argv[2]))
    lock = threading.Lock()

    def write(thread):
        i = 0
        while True:
            entry = Entry(EntryType.REFUSAL, i, "broker", f"p{thread}",
                          {"operation": "overlap.size", "reason": "rate_limited"})
            index = log.append(entry).index
            with lock:
                print(index, thread, i, flush=True)
            i += 1

    for t in range(4):
        threading.Thread(target=write, args=(t,), daemon=True).start()
    threading.Event().wait()
    """
)


def expected(thread: int, i: int) -> bytes:
    params = {"operation": "overlap.size", "reason": "rate_limited"}
    return Entry(EntryType.REFUSAL, i, "broker", f"p{thread}", params).encode()


def test_sigkill_mid_stream_loses_no_acknowledged_entry(tmp_path: Path) -> None:
    signer = make_signer()
    db = str(tmp_path / "crash.db")
    acknowledged = []
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, db, signer.signer_key()],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    ) as child:
        assert child.stdout is not None
        for line in child.stdout:
            index, thread, i = map(int, line.split())
            acknowledged.append((index, thread, i))
            if len(acknowledged) == 400:
                child.send_signal(signal.SIGKILL)  # while the other threads are mid-append
                break
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    log = PolicyLog.open(db, signer)
    size = log.size()
    bodies = list(log.entries(0, size))
    assert size >= max(index for index, _, _ in acknowledged) + 1
    for index, thread, i in acknowledged:
        assert bodies[index] == expected(thread, i)
    for body in bodies:  # no half-written entry: every one parses
        decode_entry(body)
    cp = NoteVerifier(signer.verifier_key).verify(log.latest_checkpoint())
    assert (cp.size, cp.root_hash) == (size, merkle.root_hash(bodies))
    # And the reopened log carries on from the same tree.
    log.append(Entry(EntryType.REFUSAL, 0, "broker", "after", {"operation": "x", "reason": "y"}))
    cp = NoteVerifier(signer.verifier_key).verify(log.latest_checkpoint())
    assert cp.root_hash == merkle.root_hash(list(log.entries(0, size + 1)))
    log.close()
