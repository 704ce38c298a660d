"""Signed notes and checkpoints: the Go sumdb/note known answer, and every way to fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from auditlog_support import ORIGIN, make_signer
from hypothesis import given
from hypothesis import strategies as st

from keynode.auditlog import Checkpoint, NoteSigner, NoteVerifier
from keynode.auditlog.checkpoint import unverified_size
from keynode.errors import InputError, VerificationError

KAT = json.loads((Path(__file__).parent.parent / "vectors" / "signed_note.json").read_text())
CHECKPOINT = Checkpoint(ORIGIN, 42, bytes(range(32)))


def test_go_known_answer_signs_byte_for_byte() -> None:
    signer = NoteSigner.from_signer_key(KAT["signer_key"])
    assert signer.verifier_key == KAT["verifier_key"]
    assert signer.signer_key() == KAT["signer_key"]
    assert signer.sign_text(KAT["text"]) == KAT["note"]


def test_go_known_answer_opens() -> None:
    assert NoteVerifier(KAT["verifier_key"]).open(KAT["note"]) == KAT["text"]


def test_checkpoint_format() -> None:
    note = make_signer().sign(CHECKPOINT)
    body, signature = note.split("\n\n")
    assert body == f"{ORIGIN}\n42\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    assert signature.startswith(f"\u2014 {ORIGIN} ")
    assert NoteVerifier(make_signer().verifier_key).verify(note) == CHECKPOINT


def test_cosignatures_from_other_keys_are_ignored() -> None:
    note = make_signer().sign(CHECKPOINT)
    witness = NoteSigner.generate("witness.example").sign_text(CHECKPOINT.body())
    cosigned = note + witness.split("\n\n")[1]
    assert NoteVerifier(make_signer().verifier_key).verify(cosigned) == CHECKPOINT


def _tampered() -> dict[str, str]:
    note = make_signer().sign(CHECKPOINT)
    body, sig = note.split("\n\n")
    other = make_signer(seed=2).sign(CHECKPOINT)
    return {
        "signed by another key": other,
        "size edited": note.replace("\n42\n", "\n43\n"),
        "root edited": note.replace("AAEC", "AAED"),
        "origin edited": note.replace(ORIGIN, "keynode.test/other-log", 1),
        "signature truncated": body + "\n\n" + sig[:-10] + "\n",
        "signature line missing": body + "\n\n",
        "no blank line": body + "\n" + sig,
        "not base64": note.replace(sig.split(" ")[-1][:4], "!!!!"),
        "no final newline": note[:-1],
        "only a signature by an unknown key": body
        + "\n\n"
        + NoteSigner.generate("x.example").sign_text(CHECKPOINT.body()).split("\n\n")[1],
        "empty": "",
        "size with leading zero": make_signer().sign_text(
            f"{ORIGIN}\n042\n{body.split(chr(10))[2]}\n"
        ),
        "short root": make_signer().sign_text(f"{ORIGIN}\n42\nAAEC\n"),
    }


@pytest.mark.parametrize("case", list(_tampered()))
def test_tampered_checkpoints_are_rejected_opaquely(case: str) -> None:
    verifier = NoteVerifier(make_signer().verifier_key)
    with pytest.raises(VerificationError) as caught:
        verifier.verify(_tampered()[case])
    assert str(caught.value) in ("invalid signed note", "invalid checkpoint")


@pytest.mark.parametrize(
    "key",
    [
        "",
        "name+00000000+AAAA",
        KAT["verifier_key"].replace("c74f20a3", "c74f20a4"),
        KAT["verifier_key"].replace("+ARpc", "+AhTc"),
        "a b+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
    ids=["empty", "short-key", "wrong-hash", "wrong-alg", "space-in-name"],
)
def test_malformed_verifier_keys_are_input_errors(key: str) -> None:
    with pytest.raises(InputError):
        NoteVerifier(key)


def test_malformed_signer_keys_are_input_errors() -> None:
    for key in ("", "PRIVATE+KEY+x", KAT["signer_key"].replace("c74f20a3", "00000000")):
        with pytest.raises(InputError):
            NoteSigner.from_signer_key(key)


def test_unverified_size_reads_the_claim_or_refuses() -> None:
    assert unverified_size(make_signer().sign(CHECKPOINT)) == 42
    for bad in ("", "origin\n", "origin\n-1\nroot\n", "origin\n01\nroot\n"):
        with pytest.raises(VerificationError):
            unverified_size(bad)


@given(st.text(max_size=300))
def test_arbitrary_text_never_leaks_a_raw_error(text: str) -> None:
    verifier = NoteVerifier(make_signer().verifier_key)
    with pytest.raises(VerificationError):
        verifier.verify(text)
    with pytest.raises(VerificationError):
        verifier.verify(make_signer().sign(CHECKPOINT).split("\n\n")[0] + "\n\n" + text)
