"""gRPC servicer for keynode.v1.Broker: authorise by certificate, then call the core.

Who may call what comes from the caller's verified certificate only: partners act on
themselves (their party name), operators administer, nobody else is served. Requests
never name the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import grpc

from keynode import pki
from keynode.broker.core import Broker
from keynode.errors import InputError
from keynode.policy import Standing
from keynode.transport.auth import Authorizer
from keynode.transport.status import grpc_errors
from keynode.v1 import broker_pb2 as pb
from keynode.v1 import broker_pb2_grpc as pb_grpc

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Broker"].full_name

#: Lists (session id, partner, kind, age in seconds) of the open sessions.
SessionLister = Callable[[], Sequence[tuple[str, str, str, float]]]
#: The key node's campaign system: (partner, segment-free campaign name, members) -> reached.
CampaignSink = Callable[[str, str, Sequence[str]], int]


class BrokerServicer(pb_grpc.BrokerServicer):
    """The Broker service over one :class:`Broker`."""

    def __init__(
        self,
        broker: Broker,
        authorizer: Authorizer,
        *,
        sessions: SessionLister = lambda: [],
        campaigns: CampaignSink = lambda partner, campaign, members: len(members),
    ) -> None:
        self._broker = broker
        self._auth = authorizer
        self._sessions = sessions
        self._campaigns = campaigns

    def _partner(self, context: grpc.ServicerContext) -> str:
        peer = self._auth.require(context, {pki.PARTNER})
        self._broker.check_enrolled_certificate(peer)
        return peer.party

    def _operator(self, context: grpc.ServicerContext) -> pki.PeerIdentity:
        return self._auth.require(context, {pki.OPERATOR})

    def _standing(self, standing: Standing) -> pb.PartnerStanding:
        policy = self._broker.policy
        level = standing.level or 0
        return pb.PartnerStanding(
            partner=standing.partner,
            level=level,
            level_name=policy.levels.get(level, "") if policy else "",
            resigned=standing.resigned,
            allowed_operations=self._broker.allowed_operations(standing.partner),
            policy_version=policy.version if policy else "",
            policy_hash=policy.hash if policy else "",
        )

    # -- partners ------------------------------------------------------------------------

    @grpc_errors
    def GetStanding(
        self, request: pb.GetStandingRequest, context: grpc.ServicerContext
    ) -> pb.PartnerStanding:
        return self._standing(self._broker.standing(self._partner(context)))

    @grpc_errors
    def GetCatalogue(
        self, request: pb.GetCatalogueRequest, context: grpc.ServicerContext
    ) -> pb.Catalogue:
        self._auth.require(context, {pki.PARTNER, pki.OPERATOR, pki.AUDITOR})
        policy = self._broker.policy
        if policy is None:
            return pb.Catalogue()
        matrix = policy.capability_matrix()
        return pb.Catalogue(
            policy_version=policy.version,
            policy_hash=policy.hash,
            levels=[
                pb.Catalogue.Level(level=level, name=policy.levels[level], operations=ops)
                for level, ops in matrix.items()
            ],
            segments=self._broker.segments(),
            min_cohort=policy.limits.min_cohort,
        )

    @grpc_errors
    def RequestGrant(
        self, request: pb.GrantRequest, context: grpc.ServicerContext
    ) -> pb.GrantResponse:
        partner = self._partner(context)
        signed = self._broker.request_grant(
            partner, request.operation, set_size=request.set_size or None
        )
        return pb.GrantResponse(
            token=signed.token,
            grant_id=signed.grant.grant_id,
            expires_ms=signed.grant.expires_ms,
            min_cohort=signed.grant.min_cohort,
        )

    @grpc_errors
    def Resign(self, request: pb.ResignRequest, context: grpc.ServicerContext) -> pb.ResignResponse:
        partner = self._partner(context)
        done = self._broker.resign(partner, request.reason or "partner-request", actor=partner)
        return pb.ResignResponse(
            partner=partner, destroyed_keys=done.destroyed_keys, sessions_ended=done.sessions_ended
        )

    # -- audience leases ---------------------------------------------------------------------

    @grpc_errors
    def LeaseAudience(
        self, request: pb.LeaseAudienceRequest, context: grpc.ServicerContext
    ) -> pb.LeaseAudienceResponse:
        partner = self._partner(context)
        lease = self._broker.lease_audience(request.grant, partner, request.segment)
        return pb.LeaseAudienceResponse(
            lease_id=lease.handle, expires_ms=lease.expires_ms, tokens=lease.tokens
        )

    @grpc_errors
    def RunCampaign(
        self, request: pb.RunCampaignRequest, context: grpc.ServicerContext
    ) -> pb.RunCampaignResponse:
        partner = self._partner(context)
        members = self._broker.resolve_audience(partner, request.lease_id, request.tokens)
        return pb.RunCampaignResponse(reached=self._campaigns(partner, request.campaign, members))

    # -- operators -----------------------------------------------------------------------------

    @grpc_errors
    def AddPartner(
        self, request: pb.AddPartnerRequest, context: grpc.ServicerContext
    ) -> pb.PartnerStanding:
        operator = self._operator(context)
        certificate = pki.load_certificate(request.certificate_pem)
        standing = self._broker.enrol(request.partner, certificate, actor=operator.party)
        return self._standing(standing)

    @grpc_errors
    def SetLevel(
        self, request: pb.SetLevelRequest, context: grpc.ServicerContext
    ) -> pb.PartnerStanding:
        operator = self._operator(context)
        standing = self._broker.set_level(request.partner, request.level, actor=operator.party)
        return self._standing(standing)

    @grpc_errors
    def ResignPartner(
        self, request: pb.ResignPartnerRequest, context: grpc.ServicerContext
    ) -> pb.ResignResponse:
        operator = self._operator(context)
        done = self._broker.resign(
            request.partner, request.reason or "operator-decision", actor=operator.party
        )
        return pb.ResignResponse(
            partner=done.partner,
            destroyed_keys=done.destroyed_keys,
            sessions_ended=done.sessions_ended,
        )

    @grpc_errors
    def ShowPartner(
        self, request: pb.ShowPartnerRequest, context: grpc.ServicerContext
    ) -> pb.PartnerStanding:
        self._operator(context)
        return self._standing(self._broker.standing(request.partner))

    @grpc_errors
    def ListPartners(
        self, request: pb.ListPartnersRequest, context: grpc.ServicerContext
    ) -> pb.ListPartnersResponse:
        self._operator(context)
        return pb.ListPartnersResponse(
            partners=[self._standing(s) for s in self._broker.partners()]
        )

    @grpc_errors
    def LoadPolicy(
        self, request: pb.LoadPolicyRequest, context: grpc.ServicerContext
    ) -> pb.PolicyInfo:
        operator = self._operator(context)
        policy = self._broker.load_policy(request.policy, actor=operator.party)
        return pb.PolicyInfo(version=policy.version, hash=policy.hash, policy=request.policy)

    @grpc_errors
    def ShowPolicy(
        self, request: pb.ShowPolicyRequest, context: grpc.ServicerContext
    ) -> pb.PolicyInfo:
        self._operator(context)
        policy, body = self._broker.policy, self._broker.policy_body()
        if policy is None or body is None:
            raise InputError("no policy is loaded")
        return pb.PolicyInfo(version=policy.version, hash=policy.hash, policy=body)

    @grpc_errors
    def ListSessions(
        self, request: pb.ListSessionsRequest, context: grpc.ServicerContext
    ) -> pb.ListSessionsResponse:
        self._operator(context)
        return pb.ListSessionsResponse(
            sessions=[
                pb.Session(session_id=sid, partner=partner, kind=kind, age_s=age)
                for sid, partner, kind, age in self._sessions()
            ]
        )


def add_to_server(server: grpc.Server, servicer: BrokerServicer) -> None:
    pb_grpc.add_BrokerServicer_to_server(servicer, server)
