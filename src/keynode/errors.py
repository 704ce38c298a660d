"""The exception tree of keynode. Every error keynode raises on purpose is one of these.

::

    KeynodeError
    ├── InputError            a local file, column, flag or configuration is unusable
    ├── ProtocolError         a peer sent something invalid (opaque on crypto paths)
    │   └── ProfileMismatch   the two parties normalise identifiers differently
    ├── VerificationError     a signature, proof, checkpoint or log failed to verify
    ├── PolicyDenied          the policy refuses the request (fails closed)
    ├── LimitExceeded         a size, rate, session or budget cap was hit
    ├── NotFound              an unknown session, partner or entry
    └── Unavailable           a server or store cannot be reached

Servicers translate these into gRPC status codes in exactly one place
(:mod:`keynode.transport.status`); the cores never see gRPC.
"""

from __future__ import annotations


class KeynodeError(Exception):
    """Root of every error keynode raises on purpose."""


class InputError(KeynodeError):
    """A local input (file, column, flag, configuration) cannot be used."""


class ProtocolError(KeynodeError):
    """A peer sent a message that is malformed, out of order or cryptographically invalid.

    On cryptographic paths the message is deliberately vague: a peer learns "invalid",
    never which check failed.
    """


class ProfileMismatch(ProtocolError):
    """The two parties use different identifier normalisation profiles."""


class VerificationError(KeynodeError):
    """A signature, Merkle proof, checkpoint or policy replay did not verify."""


class PolicyDenied(KeynodeError):
    """The policy does not allow the request."""


class LimitExceeded(KeynodeError):
    """A set-size, stream, session, rate or budget limit was reached."""


class NotFound(KeynodeError):
    """The named session, partner or entry does not exist."""


class Unavailable(KeynodeError):
    """A server or store cannot be reached."""
