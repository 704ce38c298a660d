"""Properties of the rules: idempotent, blind to case and blanks, kinds apart, fast == reference."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from keynode.identity import InvalidIdentifier, KeyKind, Profile, get_profile
from keynode.identity.phones import PhoneNormaliser, normalise_phone_reference

PROFILES = (
    get_profile("default"),
    get_profile("default", gmail_rules=True),
    get_profile("exact-ids", region="AT"),
)
ANY_TEXT = st.text(st.characters(categories=None, codec=None), max_size=40)
BLANKS = st.text(" \t\u00a0\u3000", max_size=3)
EMAILISH = st.one_of(
    st.emails(),
    st.builds(
        "{}@{}.{}".format,
        st.text(string.ascii_letters + ".+_-ÄöüßéÍ", min_size=1, max_size=12),
        st.text(string.ascii_letters + "-üö", min_size=1, max_size=10),
        st.sampled_from(["de", "com", "CO.UK", "xn--p1ai"]),
    ),
)
# Case changes that are the same letter in another case (unlike "ß".upper() == "SS").
_LOWER, _UPPER = string.ascii_lowercase + "äöüéí", string.ascii_uppercase + "ÄÖÜÉÍ"
UPPER = str.maketrans(_LOWER, _UPPER)
SWAP = str.maketrans(_LOWER + _UPPER, _UPPER + _LOWER)
DIGITS = st.text("0123456789", min_size=1, max_size=14)
PHONEISH = st.builds(
    "{}{}{}".format,
    st.sampled_from(["", "+", "+49", "0049", "0", "+49 (0)", "+43", "00", "+1", "+39 ", " ", "1"]),
    st.sampled_from(["", "151", "160", "30", "664", "650", "06"]),
    st.lists(DIGITS, min_size=1, max_size=4).map(lambda parts: " -/"[len(parts) % 3].join(parts)),
)
SAMPLES = {
    KeyKind.EMAIL: st.one_of(EMAILISH, ANY_TEXT),
    KeyKind.PHONE: st.one_of(PHONEISH, ANY_TEXT),
    KeyKind.CUSTOMER_ID: ANY_TEXT,
}


def _outcome(profile: Profile, kind: KeyKind, raw: str) -> bytes | str:
    """Canonical bytes, or the rejection reason; anything else escaping fails the test."""
    try:
        return profile.canonical(kind, raw)
    except InvalidIdentifier as exc:
        assert exc.kind is kind
        return exc.reason


@settings(max_examples=300)
@given(st.sampled_from(PROFILES), st.sampled_from(list(KeyKind)), st.data())
def test_canonical_is_idempotent(profile: Profile, kind: KeyKind, data: st.DataObject) -> None:
    result = _outcome(profile, kind, data.draw(SAMPLES[kind]))
    if isinstance(result, bytes):
        prefix, _, payload = result.decode().partition(":")
        assert prefix == kind.value
        assert profile.canonical(kind, payload) == result


@given(st.sampled_from(PROFILES), EMAILISH, BLANKS, BLANKS)
def test_email_case_and_blanks_do_not_matter(
    profile: Profile, email: str, before: str, after: str
) -> None:
    expected = _outcome(profile, KeyKind.EMAIL, email.lower())
    for variant in (email.translate(UPPER), email.translate(SWAP), f"{before}{email}{after}"):
        assert _outcome(profile, KeyKind.EMAIL, variant) == expected


@given(st.text(string.ascii_letters + string.digits + "-_/", min_size=1), BLANKS, BLANKS)
def test_customer_id_case_and_blanks(raw: str, before: str, after: str) -> None:
    folded, exact = get_profile("default"), get_profile("exact-ids")
    assert folded.canonical("customer_id", f"{before}{raw.upper()}{after}") == (
        folded.canonical("customer_id", raw.lower())
    )
    assert exact.canonical("customer_id", f"{before}{raw}{after}") == (
        f"customer_id:{raw}".encode()
    )


@given(st.sampled_from(["DE", "AT"]), PHONEISH, BLANKS, BLANKS)
def test_phone_blanks_do_not_matter(region: str, phone: str, before: str, after: str) -> None:
    profile = get_profile(region=region)
    assert _outcome(profile, KeyKind.PHONE, f"{before}{phone}{after}") == (
        _outcome(profile, KeyKind.PHONE, phone)
    )


@given(st.sampled_from(PROFILES), st.data())
def test_kinds_never_collide(profile: Profile, data: st.DataObject) -> None:
    raw = data.draw(st.one_of(EMAILISH, PHONEISH, ANY_TEXT))
    results = {kind: _outcome(profile, kind, raw) for kind in KeyKind}
    accepted = [r for r in results.values() if isinstance(r, bytes)]
    assert len(set(accepted)) == len(accepted)
    for kind, result in results.items():
        if isinstance(result, bytes):
            assert result.startswith(f"{kind.value}:".encode())


@settings(max_examples=500)
@given(st.sampled_from(["DE", "AT", "CH", "US", "GB", "IT", "FR", "AR", "RU"]), PHONEISH)
def test_phone_fast_path_agrees_with_reference(region: str, raw: str) -> None:
    def reference() -> str:
        try:
            return normalise_phone_reference(raw, region)
        except InvalidIdentifier as exc:
            return f"!{exc.reason}"

    normaliser = PhoneNormaliser(region)
    try:
        fast = normaliser(raw)
    except InvalidIdentifier as exc:
        fast = f"!{exc.reason}"
    assert fast == reference()
