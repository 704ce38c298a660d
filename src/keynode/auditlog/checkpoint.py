"""Signed checkpoints in the C2SP tlog-checkpoint / signed-note text form, with Ed25519.

A checkpoint body is three lines — origin, decimal tree size, base64 root hash — and
the note appends a blank line and one signature line per signer::

    keynode.example/policy-log
    42
    qwEr...=

    — keynode.example/policy-log Az3grm...

The signature line carries the key name and base64(key hash || Ed25519 signature),
where the key hash is the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key),
exactly as Go's ``golang.org/x/mod/sumdb/note`` and Sigstore's checkpoints do. Keys are
written as the same tools write them: a verifier key ``name+hash+base64(0x01||pub)``
and a signer key ``PRIVATE+KEY+name+hash+base64(0x01||seed)``.

Verification failures are deliberately opaque: "invalid signed note" / "invalid checkpoint".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from keynode.auditlog.merkle import HASH_SIZE
from keynode.errors import InputError, VerificationError

_ALG_ED25519 = b"\x01"
_SIG_PREFIX = "\u2014 "  # em dash and space, as in every signed note
_NAME = re.compile(r"[^\s+]+")
_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")
MAX_NOTE_BYTES = 16384


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the log's origin, its size and the root hash at that size."""

    origin: str
    size: int
    root_hash: bytes

    def body(self) -> str:
        """The checkpoint text that is signed (ends with a newline)."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root_hash).decode()}\n"


def unverified_size(note: str) -> int:
    """The tree size a signed checkpoint claims, read without checking the signature.

    For sizing a read before verifying (exports, listings); never a basis for trust.
    """
    lines = note.split("\n", 2)
    if len(lines) < 3 or not _SIZE.fullmatch(lines[1]):
        raise VerificationError("invalid checkpoint")
    return int(lines[1])


def _key_hash(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + _ALG_ED25519 + public).digest()[:4]


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise InputError(f"invalid key name {name!r}: no spaces or '+'")


class NoteSigner:
    """Signs checkpoints with one Ed25519 key under a key name."""

    def __init__(self, name: str, key: Ed25519PrivateKey) -> None:
        _check_name(name)
        self.name = name
        self._key = key
        public = key.public_key().public_bytes_raw()
        self._key_hash = _key_hash(name, public)
        self.verifier_key = (
            f"{name}+{self._key_hash.hex()}+{base64.b64encode(_ALG_ED25519 + public).decode()}"
        )

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        """A signer with a fresh random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_signer_key(cls, text: str) -> NoteSigner:
        """Load a ``PRIVATE+KEY+name+hash+base64`` signer key string."""
        parts = text.strip().split("+", 4)
        try:
            if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
                raise ValueError("not a signer key")
            raw = base64.b64decode(parts[4], validate=True)
            if len(raw) != 33 or raw[:1] != _ALG_ED25519:
                raise ValueError("not an Ed25519 key")
            signer = cls(parts[2], Ed25519PrivateKey.from_private_bytes(raw[1:]))
            if signer._key_hash.hex() != parts[3]:
                raise ValueError("key hash does not match")
        except (ValueError, binascii.Error) as exc:
            raise InputError(f"invalid signer key: {exc}") from None
        return signer

    def signer_key(self) -> str:
        """The secret key in ``PRIVATE+KEY+...`` form, for a 0600 file."""
        seed = self._key.private_bytes_raw()
        encoded = base64.b64encode(_ALG_ED25519 + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self._key_hash.hex()}+{encoded}"

    def sign_text(self, text: str) -> str:
        """A signed note of ``text`` (which must end with a newline)."""
        if not text.endswith("\n") or "\n\n" in text:
            raise InputError("note text must end with one newline and have no blank line")
        signature = self._key.sign(text.encode())
        blob = base64.b64encode(self._key_hash + signature).decode()
        return f"{text}\n{_SIG_PREFIX}{self.name} {blob}\n"

    def sign(self, checkpoint: Checkpoint) -> str:
        """The signed note of ``checkpoint``."""
        return self.sign_text(checkpoint.body())


class NoteVerifier:
    """Checks signed checkpoints against one Ed25519 verifier key and origin."""

    def __init__(self, verifier_key: str, origin: str | None = None) -> None:
        parts = verifier_key.strip().split("+", 2)
        try:
            if len(parts) != 3:
                raise ValueError("expected name+hash+key")
            name, hash_hex, encoded = parts
            _check_name(name)
            raw = base64.b64decode(encoded, validate=True)
            if len(raw) != 33 or raw[:1] != _ALG_ED25519:
                raise ValueError("not an Ed25519 key")
            if _key_hash(name, raw[1:]).hex() != hash_hex:
                raise ValueError("key hash does not match")
            self._public = Ed25519PublicKey.from_public_bytes(raw[1:])
        except (ValueError, binascii.Error, InputError) as exc:
            raise InputError(f"invalid verifier key: {exc}") from None
        self.name = name
        self.origin = origin if origin is not None else name
        self._key_hash = bytes.fromhex(hash_hex)

    def open(self, note: str) -> str:
        """Verify a signed note and return its text; raise VerificationError if invalid.

        Signature lines from other keys are ignored (a note may be cosigned by
        witnesses); at least one line must be ours and every line of ours must verify.
        """
        try:
            return self._open(note)
        except (ValueError, binascii.Error, InvalidSignature):
            raise VerificationError("invalid signed note") from None

    def verify(self, note: str) -> Checkpoint:
        """Verify a signed checkpoint and parse it; raise VerificationError if invalid."""
        text = self.open(note)
        try:
            return self._parse_body(text)
        except (ValueError, binascii.Error):
            raise VerificationError("invalid checkpoint") from None

    def _open(self, note: str) -> str:
        if len(note) > MAX_NOTE_BYTES or not note.endswith("\n"):
            raise ValueError("malformed note")
        body, sep, signatures = note.rpartition("\n\n")
        if not sep:
            raise ValueError("no signature block")
        body += "\n"
        ours = 0
        for line in signatures[:-1].split("\n"):
            if not line.startswith(_SIG_PREFIX):
                raise ValueError("malformed signature line")
            name, _, blob = line[len(_SIG_PREFIX) :].partition(" ")
            raw = base64.b64decode(blob, validate=True)
            if len(raw) < 5:
                raise ValueError("short signature")
            if name != self.name or raw[:4] != self._key_hash:
                continue
            self._public.verify(raw[4:], body.encode())
            ours += 1
        if ours == 0:
            raise ValueError("not signed by the configured key")
        return body

    def _parse_body(self, body: str) -> Checkpoint:
        lines = body[:-1].split("\n")
        if len(lines) < 3 or lines[0] != self.origin or not _SIZE.fullmatch(lines[1]):
            raise ValueError("malformed checkpoint body")
        root = base64.b64decode(lines[2], validate=True)
        if len(root) != HASH_SIZE:
            raise ValueError("root hash has the wrong length")
        return Checkpoint(origin=lines[0], size=int(lines[1]), root_hash=root)
