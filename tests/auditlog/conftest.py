"""Fixtures for the policy-log tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from auditlog_support import Network, make_signer

from keynode.auditlog import NoteSigner, NoteVerifier, PolicyLog


@pytest.fixture
def signer() -> NoteSigner:
    return make_signer()


@pytest.fixture
def verifier(signer: NoteSigner) -> NoteVerifier:
    return NoteVerifier(signer.verifier_key)


@pytest.fixture
def log(tmp_path: Path, signer: NoteSigner) -> Iterator[PolicyLog]:
    opened = PolicyLog.open(str(tmp_path / "audit.db"), signer)
    yield opened
    opened.close()


@pytest.fixture
def network(log: PolicyLog) -> Network:
    return Network(log)
