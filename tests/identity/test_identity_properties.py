"""Properties of the rules: idempotent, blind to case and blanks, kinds apart, fast == rules."""

from __future__ import annotations

import string

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keynode.identity import InvalidIdentifier, KeyKind, Profile, get_profile
from keynode.identity.bulk import bulk_canonical
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


def _bulk(profile: Profile, kind: KeyKind, raws: list[str | None]) -> list[bytes | None]:
    return bulk_canonical(profile, kind, pa.array(raws, pa.string())).to_pylist()  # type: ignore[no-any-return]


def _is_utf8(raw: str) -> bool:
    """Arrow strings are UTF-8: lone surrogates cannot come out of a file."""
    try:
        raw.encode()
    except UnicodeEncodeError:
        return False
    return True


@settings(max_examples=150)
@given(st.sampled_from(PROFILES), st.sampled_from(list(KeyKind)), st.data())
def test_bulk_path_agrees_with_the_rules(
    profile: Profile, kind: KeyKind, data: st.DataObject
) -> None:
    values = st.one_of(SAMPLES[kind], BLANKS).filter(_is_utf8)
    raws = data.draw(st.lists(st.one_of(st.none(), values), max_size=30))
    for raw, fast in zip(raws, _bulk(profile, kind, raws), strict=True):
        if fast is not None:
            assert raw is not None
            assert fast == profile.canonical(kind, raw)


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        ("email", " Alice@Example.COM\t"),
        ("phone", "+49 151 23456789"),
        ("phone", "0049-151-2345-6789"),
        ("phone", "(0151) 2345 6789"),
        ("phone", "+49 (0)30 1234567"),
        ("customer_id", " KN0001 "),
    ],
)
def test_bulk_path_answers_the_common_shapes(kind: str, raw: str) -> None:
    profile = get_profile()
    assert _bulk(profile, KeyKind(kind), [raw]) == [profile.canonical(kind, raw)]


@pytest.mark.parametrize(
    ("profile", "kind", "raw"),
    [
        (get_profile(gmail_rules=True), "email", "a.b+c@gmail.com"),  # provider rules: per value
        (get_profile(), "email", "kunde@müller.de"),  # IDNA: per value
        (get_profile(region="US"), "phone", "+1 650 253 0000"),  # not a 00/0 region
        (get_profile(), "phone", "+43 664 1234567"),  # not the home country
        (get_profile(), "customer_id", "\uff2b\uff2e\uff10\uff11"),  # full width, NFKC: per value
    ],
)
def test_bulk_path_leaves_the_rest_to_the_rules(profile: Profile, kind: str, raw: str) -> None:
    assert _bulk(profile, KeyKind(kind), [raw]) == [None]
