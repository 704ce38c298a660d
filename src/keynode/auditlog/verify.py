"""The auditor's verification: signatures, completeness, append-only, and the policy.

:func:`verify_log` reads a log from any :class:`LogSource` (the gRPC service, an export
directory, a local store) and raises :class:`~keynode.errors.VerificationError` naming
the first problem, or returns a :class:`Verdict`. It checks, in one streaming pass:

- every checkpoint it is given carries a valid signature of the configured key, and no
  two checkpoints of the same size disagree (a fork);
- the log neither shrank nor forked since the checkpoint the auditor trusted last time
  (rolled back, or rewritten before that size);
- the root recomputed from the entries equals every checkpoint's root at its size, and
  the entry count equals the latest checkpoint's size (edits, deletions, insertions,
  reordering and truncation all change one of these);
- every entry is in the canonical encoding, and the policy replay accepts it.

When the replay rejects an entry, hashing continues to the next checkpoint first: if
that checkpoint does not match, the log was tampered with and that is what is
reported, not the policy violation that the tampering produced.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from keynode.auditlog.checkpoint import Checkpoint, NoteVerifier
from keynode.auditlog.entries import decode_entry
from keynode.auditlog.merkle import CompactRange, leaf_hash
from keynode.auditlog.replay import PolicyReplay
from keynode.errors import VerificationError
from keynode.policy import Policy


class LogSource(Protocol):
    """Where a log is read from: the service, an export, a store."""

    def latest_checkpoint(self) -> str:
        """The signed checkpoint of the whole log."""
        ...

    def checkpoints(self) -> Iterable[str]:
        """Other signed checkpoints the source holds (may be none)."""
        ...

    def entries(self, start: int, end: int) -> Iterator[bytes]:
        """Entry bytes in ``[start, end)``, in order."""
        ...


@dataclass(frozen=True)
class Verdict:
    """A log that verified: its latest checkpoint and what was checked."""

    checkpoint: Checkpoint
    note: str
    checkpoints_checked: int


def _signed_checkpoints(
    source: LogSource, verifier: NoteVerifier, latest: Checkpoint
) -> dict[int, bytes]:
    roots = {latest.size: latest.root_hash}
    for number, note in enumerate(source.checkpoints()):
        try:
            cp = verifier.verify(note)
        except VerificationError:
            raise VerificationError(f"checkpoint #{number} is not validly signed") from None
        if roots.setdefault(cp.size, cp.root_hash) != cp.root_hash:
            raise VerificationError(f"fork: two signed checkpoints of size {cp.size} differ")
        if cp.size > latest.size:
            raise VerificationError(
                f"rolled back: a signed checkpoint of size {cp.size} is beyond the latest "
                f"({latest.size})"
            )
    return roots


def _check_against_trusted(latest: Checkpoint, trusted: Checkpoint | None) -> None:
    if trusted is None:
        return
    if latest.size < trusted.size:
        raise VerificationError(
            f"rolled back: the log has {latest.size} entries, {trusted.size} were verified before"
        )
    if latest.size == trusted.size and latest.root_hash != trusted.root_hash:
        raise VerificationError(
            f"fork: the checkpoint of size {latest.size} differs from the one verified before"
        )


def verify_log(
    source: LogSource,
    verifier: NoteVerifier,
    policies: Mapping[str, Policy],
    *,
    trusted: Checkpoint | None = None,
) -> Verdict:
    """Verify the whole log; raise VerificationError naming the first failure."""
    note = source.latest_checkpoint()
    try:
        latest = verifier.verify(note)
    except VerificationError:
        raise VerificationError("the latest checkpoint is not validly signed") from None
    _check_against_trusted(latest, trusted)
    roots = _signed_checkpoints(source, verifier, latest)
    if trusted is not None:
        roots.setdefault(trusted.size, trusted.root_hash)
        if roots[trusted.size] != trusted.root_hash:
            raise VerificationError(
                f"fork: the checkpoint of size {trusted.size} differs from the one verified before"
            )

    replay = PolicyReplay(policies)
    tree = CompactRange()
    pending: VerificationError | None = None  # a replay failure awaiting the next root check
    last_checked = 0
    if 0 in roots:
        _expect_root(tree, roots[0], 0, trusted)
    for body in source.entries(0, latest.size):
        index = tree.size
        if index >= latest.size:
            raise VerificationError(f"more entries than the latest checkpoint's {latest.size}")
        tree.append(leaf_hash(body))
        if pending is None:
            pending = _replay_one(replay, index, body)
        if tree.size in roots:
            _expect_root(tree, roots[tree.size], last_checked, trusted)
            last_checked = tree.size
            if pending is not None:
                raise pending
    if tree.size != latest.size:
        raise VerificationError(
            f"truncated: {tree.size} entries, but the latest checkpoint covers {latest.size}"
        )
    replay.finish()
    return Verdict(latest, note, len(roots))


def _replay_one(replay: PolicyReplay, index: int, body: bytes) -> VerificationError | None:
    try:
        entry = decode_entry(body)
    except VerificationError as exc:
        return VerificationError(f"entry {index}: {exc}")
    try:
        replay.apply(index, entry)
    except VerificationError as exc:  # a ReplayViolation: names the entry already
        return exc
    return None


def _expect_root(tree: CompactRange, root: bytes, since: int, trusted: Checkpoint | None) -> None:
    if tree.root() == root:
        return
    if trusted is not None and tree.size == trusted.size:
        raise VerificationError(
            f"not consistent with the checkpoint verified before (size {trusted.size}): "
            "the log was rewritten"
        )
    raise VerificationError(
        f"entries {since}..{tree.size - 1} do not match the signed checkpoint of size "
        f"{tree.size}: entries were edited, deleted, inserted or reordered"
    )
