"""The Aggregates service on a live key node over real mTLS: results, k, policy, probes.

Probing partners (bad keys, malformed or foreign-key ciphertexts, out-of-order or
oversized streams) get a clear status, and the key node keeps serving afterwards.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from fractions import Fraction

import gmpy2
import grpc
import pytest
from aggregates_support import (
    BANK_IDS,
    BANK_RECORDS,
    BANK_VALUES,
    BITS,
    PROFILE,
    AggregateNode,
    expected,
    key,
)

from keynode.auditlog import decode_entry
from keynode.auditlog.entries import EntryType
from keynode.client.aggregates import (
    AggregateOutcome,
    AggregatesClient,
    _response,
    broker_grants,
)
from keynode.client.broker import PartnerBrokerClient
from keynode.crypto.batch import GroupPool
from keynode.crypto.paillier import PaillierPrivateKey, generate_keypair
from keynode.errors import LimitExceeded, PolicyDenied, ProtocolError
from keynode.protocols.aggregate import AggregatorRequest, ValueHolder
from keynode.v1 import aggregates_pb2 as pb
from keynode.v1 import aggregates_pb2_grpc as pb_grpc

OPERATION = "aggregate.segment"


def aggregate(
    live: AggregateNode,
    pool: GroupPool,
    private_key: PaillierPrivateKey,
    *,
    name: str = "bank",
    records: list[list[bytes]] = BANK_RECORDS,
    values: list[list[int]] = BANK_VALUES,
    epsilon: Fraction | None = None,
) -> AggregateOutcome:
    channel = live.channel(name)
    return AggregatesClient(channel, target=live.target).aggregate(
        name, records, values, BITS, private_key, PROFILE, pool,
        grants=broker_grants(channel, len(records)), epsilon=epsilon,
    )  # fmt: skip


def as_dict(outcome: AggregateOutcome) -> dict[str, tuple[tuple[int, ...], int] | None]:
    return {
        r.segment: None if r.suppressed else (r.sums or (), r.count or 0) for r in outcome.segments
    }


def test_segment_sums_equal_the_plaintext_computation_and_k_suppresses(
    live: AggregateNode, pool: GroupPool, partner_key: PaillierPrivateKey
) -> None:
    outcome = aggregate(live, pool, partner_key)
    assert outcome.k == 50
    assert as_dict(outcome) == expected(BANK_IDS, BANK_VALUES, 50)
    assert [r.segment for r in outcome.segments if r.suppressed] == ["bronze", "gold"]
    # The release was logged, with the smallest released cohort (silver: 80).
    log = live.node.policy_log
    entries = [decode_entry(e) for e in log.entries(0, log.size())]
    released = [e.params for e in entries if e.type is EntryType.RELEASE]
    assert len(released) == 1
    assert released[0]["operation"] == OPERATION
    assert released[0]["released_count"] == 80
    assert released[0]["input_count"] == len(BANK_IDS)


def test_every_segment_suppressed_is_refused_by_the_cohort_rule(
    live: AggregateNode, pool: GroupPool, partner_key: PaillierPrivateKey
) -> None:
    ids = list(range(390, 420))  # 10 shared, all bronze
    with pytest.raises(PolicyDenied, match="below_cohort"):
        aggregate(
            live, pool, partner_key, records=[[key(i)] for i in ids], values=[[1, 1]] * len(ids)
        )


def test_a_level_below_four_is_refused(
    live: AggregateNode, pool: GroupPool, partner_key: PaillierPrivateKey
) -> None:
    live.issue("insurer")
    live.enrol("insurer", 3)
    with pytest.raises(PolicyDenied, match="level_too_low"):
        aggregate(live, pool, partner_key, name="insurer")
    # Nor can a level-3 partner use another partner's grant: grants are bound to identities.
    token = PartnerBrokerClient(live.channel("bank")).grant(OPERATION).token
    stub = pb_grpc.AggregatesStub(live.channel("insurer"))
    with pytest.raises(grpc.RpcError) as caught:
        stub.OpenSession(open_request(partner_key, token, partner="insurer"))
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_noise_needs_a_level_that_allows_dp_and_spends_the_budget(
    live: AggregateNode, pool: GroupPool, partner_key: PaillierPrivateKey
) -> None:
    with pytest.raises(PolicyDenied, match=r"dp\.aggregate"):
        aggregate(live, pool, partner_key, epsilon=Fraction(1, 2))
    live.node.broker.set_level("bank", 6, actor="test")
    noisy = aggregate(live, pool, partner_key, epsilon=Fraction(1, 2))
    assert [r.segment for r in noisy.segments if not r.suppressed] == ["silver"]
    assert live.engine.budget("bank").spent == Fraction(1, 2)
    aggregate(live, pool, partner_key, epsilon=Fraction(1, 2))
    with pytest.raises(LimitExceeded, match="budget"):
        aggregate(live, pool, partner_key, epsilon=Fraction(1, 10))


@pytest.mark.parametrize("kind", ["weak", "prime", "even"])
def test_bad_public_keys_are_refused(
    live: AggregateNode, partner_key: PaillierPrivateKey, kind: str
) -> None:
    weak = generate_keypair(512, rng=random.Random(5), allow_weak=True)[0].to_bytes()
    bad = {
        "weak": weak,
        "prime": int(gmpy2.next_prime(partner_key.public_key.n)).to_bytes(128, "big"),
        "even": (int(partner_key.public_key.n) + 1).to_bytes(128, "big"),
    }[kind]
    stub = pb_grpc.AggregatesStub(live.channel("bank"))
    grant = PartnerBrokerClient(live.channel("bank")).grant(OPERATION).token
    request = open_request(partner_key, grant)
    request.public_key = bad
    with pytest.raises(grpc.RpcError) as caught:
        stub.OpenSession(request)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "invalid public key"


def grant_for(live: AggregateNode, name: str = "bank") -> bytes:
    return bytes(PartnerBrokerClient(live.channel(name)).grant(OPERATION).token)


def open_request(
    private_key: PaillierPrivateKey, grant: bytes, partner: str = "bank"
) -> pb.OpenAggregateRequest:
    return pb.OpenAggregateRequest(
        partner=partner,
        grant=grant,
        profile_id=PROFILE,
        record_count=len(BANK_RECORDS),
        record_width=1,
        column_bits=list(BITS),
        public_key=private_key.public_key.to_bytes(),
    )


class RawSession:
    """The partner's side driven call by call, so that a test can tamper with any step."""

    def __init__(self, live: AggregateNode, pool: GroupPool, private_key: PaillierPrivateKey):
        channel = live.channel("bank")
        self.live = live
        self.stub = pb_grpc.AggregatesStub(channel)
        self.opening_grant = grant_for(live)
        self.opened = self.stub.OpenSession(open_request(private_key, self.opening_grant))
        self.holder = ValueHolder(BANK_RECORDS, BANK_VALUES, BITS, private_key, pool)
        self.ref = pb.AggregateSessionRef(session_id=self.opened.session_id)
        chunks = list(self.stub.DownloadRequest(self.ref))
        header = self.holder.respond(
            AggregatorRequest(
                b"".join(c.elements for c in chunks),
                b"".join(c.labels for c in chunks),
                chunks[0].label_key,
            )
        )
        assert header.reblinded_labels is not None
        step = self.opened.max_chunk_elements
        self.stub.UploadHeader(
            pb.LabelledChunk(
                session_id=self.ref.session_id,
                sequence=n,
                elements=header.reblinded[i * 32 : (i + step) * 32],
                labels=header.reblinded_labels[i * 64 : (i + step) * 64],
            )
            for n, i in enumerate(range(0, len(header.reblinded) // 32, step))
        )
        self.records = list(self.holder.record_chunks(len(BANK_RECORDS)))

    def chunk(
        self, sequence: int = 0, elements: bytes | None = None, ciphertexts: bytes | None = None
    ) -> pb.RecordChunk:
        (whole,) = self.records
        return pb.RecordChunk(
            session_id=self.ref.session_id,
            sequence=sequence,
            elements=whole.elements if elements is None else elements,
            ciphertexts=whole.ciphertexts if ciphertexts is None else ciphertexts,
        )

    def finish(self) -> pb.AggregateResult:
        request = pb.FinishRequest(session_id=self.ref.session_id, grant=grant_for(self.live))
        result: pb.AggregateResult = self.stub.Finish(request)
        return result

    def upload(self, *chunks: pb.RecordChunk) -> pb.UploadRecordsResponse:
        result: pb.UploadRecordsResponse = self.stub.UploadRecords(iter(chunks))
        return result


def _refused(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def _zeroed(session: RawSession) -> pb.RecordChunk:
    (whole,) = session.records
    size = len(whole.ciphertexts) // len(BANK_RECORDS)
    return session.chunk(ciphertexts=bytes(size) * len(BANK_RECORDS))


def _short(session: RawSession) -> pb.RecordChunk:
    (whole,) = session.records
    return session.chunk(ciphertexts=whole.ciphertexts[:-1])


def _out_of_order(session: RawSession) -> pb.RecordChunk:
    return session.chunk(sequence=1)


def _too_many_records(session: RawSession) -> pb.RecordChunk:
    (whole,) = session.records
    cap = session.opened.max_chunk_records
    repeat = cap // len(BANK_RECORDS) + 1
    return session.chunk(elements=whole.elements * repeat, ciphertexts=whole.ciphertexts * repeat)


@pytest.mark.parametrize("tamper", [_zeroed, _short, _out_of_order, _too_many_records])
def test_malformed_record_streams_end_the_session_and_the_node_keeps_serving(
    live: AggregateNode,
    pool: GroupPool,
    partner_key: PaillierPrivateKey,
    tamper: Callable[[RawSession], pb.RecordChunk],
) -> None:
    session = RawSession(live, pool, partner_key)
    error = _refused(lambda: session.upload(tamper(session)))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    if tamper is _zeroed:
        assert error.details() == "invalid ciphertext"
    assert _refused(session.finish).code() is grpc.StatusCode.NOT_FOUND
    assert live.engine.open_sessions() == []
    assert as_dict(aggregate(live, pool, partner_key)) == expected(BANK_IDS, BANK_VALUES, 50)


def test_an_oversized_message_is_refused_by_the_transport(
    live: AggregateNode, pool: GroupPool, partner_key: PaillierPrivateKey
) -> None:
    session = RawSession(live, pool, partner_key)
    huge = session.chunk(ciphertexts=bytes(5 * 1024 * 1024))
    assert _refused(lambda: session.upload(huge)).code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert as_dict(aggregate(live, pool, partner_key)) == expected(BANK_IDS, BANK_VALUES, 50)


def test_foreign_key_ciphertexts_never_decrypt_to_a_number(
    live: AggregateNode,
    pool: GroupPool,
    partner_key: PaillierPrivateKey,
    foreign_key: PaillierPrivateKey,
) -> None:
    session = RawSession(live, pool, partner_key)
    foreign = ValueHolder(BANK_RECORDS, BANK_VALUES, BITS, foreign_key, pool)
    (theirs,) = list(foreign.record_chunks(len(BANK_RECORDS)))
    try:
        session.upload(session.chunk(ciphertexts=theirs.ciphertexts))
    except grpc.RpcError as err:  # out of range for our n^2: refused at once
        assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
        return
    result = session.finish()
    response = _response(result, tuple(session.opened.segments))
    with pytest.raises(ProtocolError, match="invalid result"):
        session.holder.result(response)


def test_out_of_order_calls_and_other_partners_sessions_are_refused(
    live: AggregateNode, pool: GroupPool, partner_key: PaillierPrivateKey
) -> None:
    stub = pb_grpc.AggregatesStub(live.channel("bank"))
    grant = PartnerBrokerClient(live.channel("bank")).grant(OPERATION).token
    opened = stub.OpenSession(open_request(partner_key, grant))
    ref = pb.AggregateSessionRef(session_id=opened.session_id)
    finish = pb.FinishRequest(session_id=ref.session_id, grant=grant_for(live))
    assert _refused(lambda: stub.Finish(finish)).code() is grpc.StatusCode.INVALID_ARGUMENT
    live.issue("media")
    live.enrol("media", 4)
    other = pb_grpc.AggregatesStub(live.channel("media"))
    denied = _refused(lambda: list(other.DownloadRequest(ref)))
    assert denied.code() is grpc.StatusCode.PERMISSION_DENIED
    stub.CloseSession(ref)
    assert live.engine.open_sessions() == []


def test_resignation_ends_the_partners_sessions(
    live: AggregateNode, partner_key: PaillierPrivateKey
) -> None:
    stub = pb_grpc.AggregatesStub(live.channel("bank"))
    grant = PartnerBrokerClient(live.channel("bank")).grant(OPERATION).token
    stub.OpenSession(open_request(partner_key, grant))
    assert [kind for _, _, kind, _ in live.node.sessions()] == ["aggregate"]
    live.node.broker.resign("bank", "contract-ended", actor="test")
    assert live.engine.open_sessions() == []


@pytest.mark.parametrize(
    ("released", "suppressed"),
    [(["gold"], ["silver"]), (["gold", "silver"], ["silver", "bronze"]), (["x"], [])],
    ids=["missing", "twice", "unknown"],
)
def test_a_result_must_name_each_catalogue_segment_once(
    released: list[str], suppressed: list[str]
) -> None:
    result = pb.AggregateResult(
        released=[pb.SegmentCiphertext(segment=s, ciphertext=b"") for s in released],
        suppressed=suppressed,
    )
    with pytest.raises(ProtocolError, match="segment"):
        _response(result, ("bronze", "gold", "silver"))


def test_finish_needs_a_fresh_grant_of_its_own(
    live: AggregateNode, pool: GroupPool, partner_key: PaillierPrivateKey
) -> None:
    session = RawSession(live, pool, partner_key)
    session.upload(session.chunk())
    spent = pb.FinishRequest(session_id=session.ref.session_id, grant=session.opening_grant)
    refused = _refused(lambda: session.stub.Finish(spent))
    assert refused.code() is grpc.StatusCode.UNAUTHENTICATED
    response = _response(session.finish(), tuple(session.opened.segments))
    got = {
        session.opened.segments[r.segment]: None if r.suppressed else (r.sums, r.count)
        for r in session.holder.result(response)
    }
    assert got == expected(BANK_IDS, BANK_VALUES, 50)
