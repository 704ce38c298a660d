"""The public names of keynode.identity and keynode.synthetic are a contract: pin them."""

from __future__ import annotations

import keynode.identity
import keynode.synthetic


def test_identity_exports() -> None:
    assert set(keynode.identity.__all__) == {
        "BUILTIN_PROFILES",
        "InvalidIdentifier",
        "KeyKind",
        "NormalisedTable",
        "Profile",
        "add_profile_arguments",
        "get_profile",
        "profile_from_args",
        "read_table",
    }
    assert all(hasattr(keynode.identity, name) for name in keynode.identity.__all__)


def test_synthetic_exports() -> None:
    assert set(keynode.synthetic.__all__) == {
        "DEFAULT_MEMBERS",
        "PARTNERS",
        "DemoNetwork",
        "PartnerSpec",
        "PartyFile",
        "generate_network",
    }
    assert all(hasattr(keynode.synthetic, name) for name in keynode.synthetic.__all__)
