"""Identifier normalisation: raw CRM fields to the canonical bytes both parties match on.

A :class:`Profile` fixes the rules (phone region, Gmail rules, id case folding) and
names them with a ``profile_id`` the handshake compares. :func:`read_table` turns a
CSV or Parquet customer file into records of canonical keys and accounts for every row.
Pure Python: no gRPC, no network. The rules and their reasons: ``docs/identity.md``.
"""

from keynode.identity.kinds import InvalidIdentifier, KeyKind
from keynode.identity.profiles import (
    BUILTIN_PROFILES,
    Profile,
    add_profile_arguments,
    get_profile,
    profile_from_args,
)
from keynode.identity.table import NormalisedTable, read_table

__all__ = [
    "BUILTIN_PROFILES",
    "InvalidIdentifier",
    "KeyKind",
    "NormalisedTable",
    "Profile",
    "add_profile_arguments",
    "get_profile",
    "profile_from_args",
    "read_table",
]
