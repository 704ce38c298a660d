"""The public names of the packages the broker and the auditor build on are pinned."""

from __future__ import annotations

import keynode.auditlog
import keynode.policy
import keynode.storage

PINNED = {
    keynode.policy: [
        "LEVELS", "Decision", "Grant", "GrantSigner", "GrantTerms", "GrantVerifier", "Limits",
        "OperationRule", "Policy", "Reason", "ReplayGuard", "RevocationList", "SignedGrant",
        "Standing", "UsageLedger", "Window", "decide_grant", "decide_release", "default_policy",
        "default_policy_bytes", "grant_terms", "load_policy", "load_policy_file", "system_clock_ms",
    ],
    keynode.auditlog: [
        "Checkpoint", "Entry", "EntryType", "ExportSource", "LogSource", "NoteSigner",
        "NoteVerifier", "PolicyLog", "PolicyReplay", "Receipt", "ReplayViolation", "Verdict",
        "decode_entry", "export_log", "records", "verify_log",
    ],
    keynode.storage: ["Database", "Transaction", "open_database"],
}  # fmt: skip


def test_exported_members() -> None:
    for module, names in PINNED.items():
        assert sorted(module.__all__) == sorted(names), module.__name__
        for name in names:
            assert getattr(module, name) is not None
