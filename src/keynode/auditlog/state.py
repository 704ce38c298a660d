"""The auditor's memory: the last checkpoint it verified, kept in a small local file.

Saving the signed note itself (not just size and root) means a tampered state file
fails signature verification instead of silently lowering the auditor's guard.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from keynode.auditlog.checkpoint import Checkpoint, NoteVerifier
from keynode.errors import InputError, VerificationError


def default_state_path(origin: str) -> Path:
    """``$XDG_STATE_HOME/keynode/audit/<origin>.json`` (origin made file-name safe)."""
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "keynode" / "audit" / (re.sub(r"[^A-Za-z0-9._-]", "_", origin) + ".json")


def load_trusted(path: Path, verifier: NoteVerifier) -> Checkpoint | None:
    """The checkpoint verified last time, or None on the first run."""
    if not path.exists():
        return None
    try:
        note = json.loads(path.read_text(encoding="utf-8"))["note"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"cannot read audit state {path}: {exc}") from None
    try:
        return verifier.verify(note)
    except VerificationError:
        raise VerificationError(f"the saved audit state {path} is not validly signed") from None


def save_trusted(path: Path, note: str) -> None:
    """Remember ``note`` as the last verified checkpoint (atomic replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"note": note}) + "\n", encoding="utf-8")
    tmp.replace(path)
