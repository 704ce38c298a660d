"""The Matching service over a real gRPC server: normal path and every bad input."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from matching_support import KEY_NODE_KEYS, PROFILE, Served

from keynode.client.matching import MatchingClient
from keynode.crypto.batch import GroupPool
from keynode.crypto.ristretto255 import IDENTITY, random_scalar
from keynode.errors import LimitExceeded, NotFound, ProfileMismatch, Unavailable
from keynode.protocols.psi import PSI_DST, Variant
from keynode.v1 import matching_pb2 as pb
from keynode.v1 import matching_pb2_grpc as pb_grpc

PARTNER = [[f"email:user{i}@example.com".encode()] for i in range(300, 700)]  # 200 shared


def _match(served: Served, pool: GroupPool, variant: Variant = Variant.CARDINALITY, **kw: object):  # type: ignore[no-untyped-def]
    client = MatchingClient(served.channel, target=served.target)
    return client.match("bank", PARTNER, PROFILE, variant, pool, **kw)  # type: ignore[arg-type]


def _assert_still_serving(served: Served, pool: GroupPool) -> None:
    assert _match(served, pool).overlap == 200


def test_cardinality_over_grpc(served: Served, pool: GroupPool) -> None:
    result = _match(served, pool)
    assert (result.overlap, result.partner_records, result.key_node_elements) == (200, 400, 500)
    assert result.shared_records is None
    assert served.engine.open_sessions() == []


def test_membership_over_grpc(served: Served, pool: GroupPool) -> None:
    result = _match(served, pool, Variant.MEMBERSHIP)
    assert result.shared_records == tuple(range(200))


def test_multi_key_records_count_once(served: Served, pool: GroupPool) -> None:
    records = [
        [b"email:user1@example.com", b"phone:+4930000001"],
        [b"phone:+4930000002", b"email:user2@example.com"],
        [b"email:nobody@example.com"],
    ]
    client = MatchingClient(served.channel)
    result = client.match("bank", records, PROFILE, Variant.MEMBERSHIP, pool)
    assert result.shared_records == (0, 1)


def _stub(served: Served) -> pb_grpc.MatchingStub:
    return pb_grpc.MatchingStub(served.channel)


def _open(
    served: Served, records: int = 4, width: int = 1, profile: str = PROFILE, partner: str = "probe"
) -> str:
    response = _stub(served).OpenSession(
        pb.OpenSessionRequest(
            partner=partner,
            variant=pb.PSI_VARIANT_CARDINALITY,
            profile_id=profile,
            record_count=records,
            record_width=width,
        ),
        timeout=10,
    )
    return str(response.session_id)


def _valid(pool: GroupPool, n: int) -> bytes:
    return pool.blind([f"x{i}".encode() for i in range(n)], PSI_DST, random_scalar())


def _upload(served: Served, chunks: list[tuple[str, int, bytes]]) -> pb.UploadSummary:
    requests: Iterator[pb.ElementChunk] = (
        pb.ElementChunk(session_id=s, sequence=q, elements=e) for s, q, e in chunks
    )
    return _stub(served).UploadBlinded(requests, timeout=10)


def _code(call) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as info:
        call()
    details = info.value.details()
    assert "Traceback" not in details and 'File "' not in details
    return info.value.code()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "bad",
    [IDENTITY, b"\xff" * 31 + b"\x7f", b"\x01" * 32],
    ids=["identity", "non_canonical", "not_on_group"],
)
def test_invalid_points_are_refused(served: Served, pool: GroupPool, bad: bytes) -> None:
    sid = _open(served, records=3)
    code = _code(lambda: _upload(served, [(sid, 0, _valid(pool, 2) + bad)]))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    _assert_still_serving(served, pool)


def test_ragged_element_data_is_refused(served: Served, pool: GroupPool) -> None:
    sid = _open(served, records=3)
    assert (
        _code(lambda: _upload(served, [(sid, 0, b"\x01" * 33)])) is grpc.StatusCode.INVALID_ARGUMENT
    )
    _assert_still_serving(served, pool)


def test_out_of_order_stream_is_refused(served: Served, pool: GroupPool) -> None:
    sid = _open(served, records=4)
    code = _code(lambda: _upload(served, [(sid, 0, _valid(pool, 2)), (sid, 2, _valid(pool, 2))]))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    _assert_still_serving(served, pool)


def test_stream_longer_than_declared_is_refused(served: Served, pool: GroupPool) -> None:
    sid = _open(served, records=2)
    code = _code(lambda: _upload(served, [(sid, 0, _valid(pool, 3))]))
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED
    _assert_still_serving(served, pool)


def test_chunk_larger_than_the_cap_is_refused(served: Served, pool: GroupPool) -> None:
    sid = _open(served, records=1000)
    code = _code(lambda: _upload(served, [(sid, 0, _valid(pool, 129))]))
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED
    _assert_still_serving(served, pool)


def test_message_over_4_mib_is_refused_by_the_transport(served: Served, pool: GroupPool) -> None:
    sid = _open(served, records=1000)
    code = _code(lambda: _upload(served, [(sid, 0, b"\x00" * (5 * 1024 * 1024))]))
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED
    _assert_still_serving(served, pool)


def test_set_larger_than_the_cap_is_refused_at_open(served: Served, pool: GroupPool) -> None:
    assert _code(lambda: _open(served, records=2001)) is grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(LimitExceeded, match="cap"):
        client = MatchingClient(served.channel)
        client.match(
            "bank", [[b"k%d" % i] for i in range(2001)], PROFILE, Variant.CARDINALITY, pool
        )
    _assert_still_serving(served, pool)


def test_session_count_is_capped(served: Served, pool: GroupPool) -> None:
    for _ in range(4):
        _open(served)
    assert _code(lambda: _open(served)) is grpc.StatusCode.RESOURCE_EXHAUSTED
    for sid, _, _ in served.engine.open_sessions():
        served.engine.close(sid)
    _assert_still_serving(served, pool)


def test_unknown_session_is_not_found(served: Served, pool: GroupPool) -> None:
    stub = _stub(served)
    ref = pb.SessionRef(session_id="no-such-session")
    assert (
        _code(lambda: list(stub.DownloadKeyNodeSet(ref, timeout=10))) is grpc.StatusCode.NOT_FOUND
    )
    assert _code(lambda: list(stub.DownloadReblinded(ref, timeout=10))) is grpc.StatusCode.NOT_FOUND
    assert _code(lambda: stub.CloseSession(ref, timeout=10)) is grpc.StatusCode.NOT_FOUND
    assert _code(lambda: _upload(served, [("no-such-session", 0, _valid(pool, 1))])) is (
        grpc.StatusCode.NOT_FOUND
    )
    _assert_still_serving(served, pool)


def test_download_before_upload_is_refused(served: Served, pool: GroupPool) -> None:
    sid = _open(served)
    ref = pb.SessionRef(session_id=sid)
    code = _code(lambda: list(_stub(served).DownloadReblinded(ref, timeout=10)))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    _assert_still_serving(served, pool)


def test_second_upload_to_a_session_is_refused(served: Served, pool: GroupPool) -> None:
    sid = _open(served, records=2)
    _upload(served, [(sid, 0, _valid(pool, 2))])
    assert (
        _code(lambda: _upload(served, [(sid, 0, _valid(pool, 2))]))
        is grpc.StatusCode.INVALID_ARGUMENT
    )


def test_profile_mismatch_is_refused_clearly(served: Served, pool: GroupPool) -> None:
    assert (
        _code(lambda: _open(served, profile="other-profile:ffff"))
        is grpc.StatusCode.FAILED_PRECONDITION
    )
    with pytest.raises(ProfileMismatch, match="profile"):
        MatchingClient(served.channel).match("bank", PARTNER, "other:1", Variant.CARDINALITY, pool)
    _assert_still_serving(served, pool)


def test_unspecified_variant_and_empty_sets_are_refused(served: Served) -> None:
    stub = _stub(served)
    no_variant = pb.OpenSessionRequest(
        partner="p", profile_id=PROFILE, record_count=1, record_width=1
    )
    assert (
        _code(lambda: stub.OpenSession(no_variant, timeout=10)) is grpc.StatusCode.INVALID_ARGUMENT
    )
    assert _code(lambda: _open(served, records=0)) is grpc.StatusCode.INVALID_ARGUMENT
    assert _code(lambda: _open(served, width=99)) is grpc.StatusCode.INVALID_ARGUMENT


def test_abandoned_stream_frees_its_session(served: Served, pool: GroupPool) -> None:
    sid = _open(served, records=8)

    def chunks() -> Iterator[pb.ElementChunk]:
        yield pb.ElementChunk(session_id=sid, sequence=0, elements=_valid(pool, 2))
        raise RuntimeError("client went away")

    with pytest.raises(grpc.RpcError):
        _stub(served).UploadBlinded(chunks(), timeout=10)
    for _ in range(50):
        if not any(s == sid for s, _, _ in served.engine.open_sessions()):
            break
        import time

        time.sleep(0.1)
    assert not any(s == sid for s, _, _ in served.engine.open_sessions())
    _assert_still_serving(served, pool)


def test_rotation_destroys_the_cached_set_and_old_values_stop_matching(
    served: Served, pool: GroupPool
) -> None:
    served.engine.precompute("bank")
    assert served.engine.keyring.is_cached("bank")
    sid = _open(served, partner="bank")
    before = b"".join(
        c.elements for c in _stub(served).DownloadKeyNodeSet(pb.SessionRef(session_id=sid))
    )
    served.engine.rotate_key("bank")
    assert not served.engine.keyring.is_cached("bank")
    with pytest.raises(NotFound):
        served.engine.close(sid)  # the rotation ended the session
    sid = _open(served, partner="bank")
    after = b"".join(
        c.elements for c in _stub(served).DownloadKeyNodeSet(pb.SessionRef(session_id=sid))
    )
    old = {before[i : i + 32] for i in range(0, len(before), 32)}
    new = {after[i : i + 32] for i in range(0, len(after), 32)}
    assert len(old) == len(new) == len(KEY_NODE_KEYS)
    assert not old & new


def test_unreachable_server_is_a_clear_error(pool: GroupPool) -> None:
    channel = grpc.insecure_channel("127.0.0.1:9")
    client = MatchingClient(channel, target="127.0.0.1:9", unary_timeout_s=2)
    with pytest.raises(Unavailable, match=r"cannot reach the keynode server at 127\.0\.0\.1:9"):
        client.match("bank", PARTNER, PROFILE, Variant.CARDINALITY, pool)
    channel.close()
