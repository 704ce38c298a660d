"""Offline copies of the log for audits without network access.

An export directory holds three files, written atomically (temporary file + rename):

- ``entries.jsonl`` — one canonical entry per line (the canonical encoding never
  contains a newline), exactly the bytes the Merkle tree hashes;
- ``checkpoints.jsonl`` — every signed checkpoint, oldest first, as ``{"note": ...}``;
- ``checkpoint`` — the latest signed checkpoint, as plain text.

:class:`ExportSource` reads such a directory as a
:class:`~keynode.auditlog.verify.LogSource`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from keynode.auditlog.checkpoint import unverified_size
from keynode.auditlog.verify import LogSource
from keynode.errors import InputError, VerificationError

ENTRIES = "entries.jsonl"
CHECKPOINTS = "checkpoints.jsonl"
LATEST = "checkpoint"


def _write_atomically(path: Path, lines: Iterable[bytes]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as out:
        for line in lines:
            out.write(line)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)


def export_log(source: LogSource, directory: str | Path, checkpoints: Iterable[str]) -> int:
    """Write the log at ``source``'s latest checkpoint to ``directory``; return its size.

    ``checkpoints``: the signed checkpoints to include (all of them, from a store).
    Entries are copied up to the size of the latest checkpoint read first, so a log
    that grows during the export still yields a consistent copy.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    latest = source.latest_checkpoint()
    size = unverified_size(latest)
    kept = [note for note in checkpoints if unverified_size(note) <= size]
    _write_atomically(out / ENTRIES, (body + b"\n" for body in source.entries(0, size)))
    _write_atomically(
        out / CHECKPOINTS, (json.dumps({"note": note}).encode() + b"\n" for note in kept)
    )
    _write_atomically(out / LATEST, [latest.encode()])
    return size


class ExportSource:
    """An export directory read as a log source."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        if not (self.directory / LATEST).is_file():
            raise InputError(f"{self.directory} is not a keynode audit export (no {LATEST})")

    def latest_checkpoint(self) -> str:
        """The exported latest checkpoint."""
        return (self.directory / LATEST).read_text(encoding="utf-8")

    def checkpoints(self) -> Iterator[str]:
        """Every exported checkpoint."""
        path = self.directory / CHECKPOINTS
        if not path.exists():
            return
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines):
                try:
                    note = json.loads(line)["note"]
                    if not isinstance(note, str):
                        raise TypeError("note is not text")
                except (ValueError, KeyError, TypeError):
                    raise VerificationError(f"checkpoint #{number} is malformed") from None
                yield note

    def entries(self, start: int, end: int) -> Iterator[bytes]:
        """Exported entries in ``[start, end)``.

        An export is an exact snapshot: lines beyond ``end`` (when ``end`` is the size of
        the exported checkpoint) are entries no checkpoint covers, which is an error.
        Fewer lines than asked are left to the verifier to report as truncation.
        """
        with (self.directory / ENTRIES).open("rb") as lines:
            for index, line in enumerate(lines):
                if index >= end:
                    if end == unverified_size(self.latest_checkpoint()):
                        raise VerificationError(
                            f"entry {index} and after are not covered by the exported checkpoint"
                        )
                    return
                if index >= start:
                    if not line.endswith(b"\n"):
                        raise VerificationError(f"entry {index} is cut short")
                    yield line[:-1]
