"""A partner's life on a live key node over real mTLS: levels 1 to 4, resignation, audit.

The broker, matching and audit services run on one real port with the network's
certificates; the operator, the partner and the auditor each use their own.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from broker_support import KEY_NODE_KEYS, PROFILE, SEGMENTS, LiveNode

from keynode import pki
from keynode.cli.main import main
from keynode.client.broker import OperatorClient, PartnerBrokerClient
from keynode.client.matching import MatchingClient
from keynode.crypto.batch import GroupPool
from keynode.errors import PolicyDenied, VerificationError
from keynode.policy import default_policy_bytes
from keynode.protocols.psi import Variant
from keynode.v1 import matching_pb2 as mpb
from keynode.v1 import matching_pb2_grpc as mpb_grpc

BANK = [[f"email:m{i}@example.com".encode()] for i in range(300, 460)]  # 100 shared


def _operator(live: LiveNode) -> OperatorClient:
    return OperatorClient(live.channel("olga"), target=live.target)


def _partner(live: LiveNode, name: str = "bank") -> PartnerBrokerClient:
    return PartnerBrokerClient(live.channel(name), target=live.target)


def _match(live: LiveNode, pool: GroupPool, variant: Variant, name: str = "bank") -> int:
    operation = "overlap.size" if variant is Variant.CARDINALITY else "overlap.membership"
    token = _partner(live, name).grant(operation, set_size=len(BANK)).token
    client = MatchingClient(live.channel(name), target=live.target)
    return client.match("bank", BANK, PROFILE, variant, pool, grant=token).overlap


def _enrol(live: LiveNode, name: str = "bank", level: int = 1) -> None:
    operator = _operator(live)
    cert = (live.certs(name) / "tls.crt").read_bytes()
    assert operator.add_partner("bank", cert).level == 1
    if level > 1:
        assert operator.set_level("bank", level).level == level


@pytest.fixture
def enrolled(live: LiveNode) -> LiveNode:
    _operator(live).load_policy(default_policy_bytes())
    _enrol(live)
    return live


def test_levels_one_to_four_then_resignation_then_audit(
    enrolled: LiveNode, pool: GroupPool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live, operator, bank = enrolled, _operator(enrolled), _partner(enrolled)

    # Level 1: the catalogue, but no customer data.
    assert bank.standing().level == 1
    assert [level.level for level in bank.catalogue().levels] == [1, 2, 3, 4, 5, 6]
    with pytest.raises(PolicyDenied, match="level_too_low"):
        bank.grant("overlap.size")

    # Level 2: overlap size only.
    operator.set_level("bank", 2)
    assert _match(live, pool, Variant.CARDINALITY) == 100
    with pytest.raises(PolicyDenied, match="level_too_low"):
        bank.grant("overlap.membership")

    # Level 3: which of its own records are shared.
    operator.set_level("bank", 3)
    assert _match(live, pool, Variant.MEMBERSHIP) == 100
    with pytest.raises(PolicyDenied, match="level_too_low"):
        bank.grant("audience.lease")

    # Level 4: a leased audience of a jointly agreed segment, and a campaign to it.
    operator.set_level("bank", 4)
    lease = bank.lease_audience("gold")
    assert len(lease.tokens) == len(SEGMENTS["gold"])
    assert bank.run_campaign(lease.lease_id, lease.tokens[:30], "travel-insurance") == 30
    assert [s.partner for s in operator.partners()] == ["bank"]

    # Resignation by the operator: everything the partner held is now useless.
    done = operator.resign("bank", "contract-ended")
    assert sorted(done.destroyed_keys) == ["ecdh_scalar", "lease_key", "token_key"]
    with pytest.raises(VerificationError):  # its certificate is revoked at the key node
        bank.grant("overlap.size")
    with pytest.raises(VerificationError):
        bank.run_campaign(lease.lease_id, lease.tokens, "travel-insurance")
    with pytest.raises(VerificationError, match="invalid lease"):  # even for the broker itself
        live.node.broker.resolve_audience("bank", lease.lease_id, lease.tokens)
    assert operator.show("bank").resigned

    # The auditor proves the log complete, append-only and obeyed.
    key_file = live.node.state.root / "log-verifier.pub"
    args = ["audit", "verify", "--server", live.target, "--certs", str(live.certs("aude")),
            "--key-file", str(key_file), "--state", str(tmp_path / "auditor.state")]  # fmt: skip
    assert main(args) == 0, capsys.readouterr()
    assert "OK:" in capsys.readouterr().out


def test_resigned_partners_old_blinded_values_match_nothing_after_reenrolment(
    enrolled: LiveNode, pool: GroupPool
) -> None:
    live, operator = enrolled, _operator(enrolled)
    operator.set_level("bank", 2)

    def key_node_set(name: str) -> set[bytes]:
        token = _partner(live, name).grant("overlap.size", set_size=1).token
        stub = mpb_grpc.MatchingStub(live.channel(name))
        opened = stub.OpenSession(
            mpb.OpenSessionRequest(
                partner="bank",
                variant=mpb.PSI_VARIANT_CARDINALITY,
                profile_id=PROFILE,
                record_count=60,
                record_width=1,
                grant=token,
            )
        )
        ref = mpb.SessionRef(session_id=opened.session_id)
        data = b"".join(c.elements for c in stub.DownloadKeyNodeSet(ref))
        return {data[i : i + 32] for i in range(0, len(data), 32)}

    before = key_node_set("bank")
    old_keys = {k: live.node.broker._holders[k].key_id("bank") for k in ("token_key", "lease_key")}
    operator.resign("bank", "contract-ended")
    assert live.node.engine.keyring.key_id("bank") is None

    live.issue(pki.PARTNER, "bank", name="bank-new")
    cert = (live.certs("bank-new") / "tls.crt").read_bytes()
    assert operator.add_partner("bank", cert).level == 1
    with pytest.raises(VerificationError):  # the old certificate stays revoked
        _partner(live, "bank").standing()
    operator.set_level("bank", 4)
    after = key_node_set("bank-new")
    assert len(before) == len(after) == len(KEY_NODE_KEYS)
    assert not before & after  # nothing the partner kept links to anything new
    _partner(live, "bank-new").lease_audience("silver")
    new_keys = {k: live.node.broker._holders[k].key_id("bank") for k in ("token_key", "lease_key")}
    assert all(new_keys[k] not in (None, old_keys[k]) for k in new_keys)


def test_partner_can_resign_itself(enrolled: LiveNode) -> None:
    done = _partner(enrolled).resign("leaving-network")
    assert done.partner == "bank" and "ecdh_scalar" in done.destroyed_keys
    assert _operator(enrolled).show("bank").resigned


# -- bad credentials -----------------------------------------------------------------------


def _code(call) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code()  # type: ignore[no-any-return]


def test_certificate_from_another_ca_is_refused(enrolled: LiveNode, tmp_path: Path) -> None:
    pki.init_ca("testnet", tmp_path / "rogue-ca")
    pki.issue(tmp_path / "rogue-ca", pki.PARTNER, "bank", enrolled.certs("rogue"))
    from keynode.v1 import broker_pb2, broker_pb2_grpc

    stub = broker_pb2_grpc.BrokerStub(enrolled.channel("rogue"))
    code = _code(lambda: stub.GetStanding(broker_pb2.GetStandingRequest(), timeout=5))
    assert code is grpc.StatusCode.UNAVAILABLE  # the TLS handshake fails


def test_wrong_role_is_refused(enrolled: LiveNode) -> None:
    auditor = OperatorClient(enrolled.channel("aude"), target=enrolled.target)
    with pytest.raises(PolicyDenied, match="auditor role"):
        auditor.set_level("bank", 6)
    partner_as_operator = OperatorClient(enrolled.channel("bank"), target=enrolled.target)
    with pytest.raises(PolicyDenied):
        partner_as_operator.set_level("bank", 6)


def test_another_partners_certificate_cannot_act_for_it(
    enrolled: LiveNode, pool: GroupPool
) -> None:
    _operator(enrolled).set_level("bank", 2)
    enrolled.issue(pki.PARTNER, "insurer")
    token = _partner(enrolled).grant("overlap.size").token
    insurer = MatchingClient(enrolled.channel("insurer"), target=enrolled.target)
    with pytest.raises(PolicyDenied, match="only as itself"):
        insurer.match("bank", BANK, PROFILE, Variant.CARDINALITY, pool, grant=token)
    with pytest.raises(PolicyDenied, match="not enrolled"):  # nor use the grant as itself
        insurer.match("insurer", BANK, PROFILE, Variant.CARDINALITY, pool, grant=token)


def test_unenrolled_certificate_of_an_enrolled_name_is_refused(enrolled: LiveNode) -> None:
    enrolled.issue(pki.PARTNER, "bank", name="bank-twin")
    with pytest.raises(PolicyDenied, match="not enrolled with this certificate"):
        _partner(enrolled, "bank-twin").standing()


def test_replayed_grant_is_refused(enrolled: LiveNode, pool: GroupPool) -> None:
    _operator(enrolled).set_level("bank", 2)
    token = _partner(enrolled).grant("overlap.size").token
    client = MatchingClient(enrolled.channel("bank"), target=enrolled.target)
    assert (
        client.match("bank", BANK, PROFILE, Variant.CARDINALITY, pool, grant=token).overlap == 100
    )
    with pytest.raises(VerificationError, match="invalid grant"):
        client.match("bank", BANK, PROFILE, Variant.CARDINALITY, pool, grant=token)


def test_grant_for_another_operation_is_refused(enrolled: LiveNode, pool: GroupPool) -> None:
    _operator(enrolled).set_level("bank", 3)
    token = _partner(enrolled).grant("overlap.size").token
    client = MatchingClient(enrolled.channel("bank"), target=enrolled.target)
    with pytest.raises(VerificationError, match="invalid grant"):
        client.match("bank", BANK, PROFILE, Variant.MEMBERSHIP, pool, grant=token)


def test_no_grant_is_refused(enrolled: LiveNode, pool: GroupPool) -> None:
    _operator(enrolled).set_level("bank", 2)
    client = MatchingClient(enrolled.channel("bank"), target=enrolled.target)
    with pytest.raises(VerificationError, match="invalid grant"):
        client.match("bank", BANK, PROFILE, Variant.CARDINALITY, pool)


def test_small_sets_are_refused_by_the_cohort_rule(enrolled: LiveNode, pool: GroupPool) -> None:
    _operator(enrolled).set_level("bank", 2)
    token = _partner(enrolled).grant("overlap.size").token
    client = MatchingClient(enrolled.channel("bank"), target=enrolled.target)
    with pytest.raises(PolicyDenied, match="below_cohort"):
        client.match("bank", BANK[:10], PROFILE, Variant.CARDINALITY, pool, grant=token)


def test_no_policy_denies_everything(live: LiveNode) -> None:
    with pytest.raises(PolicyDenied, match="no policy"):
        _enrol(live)
