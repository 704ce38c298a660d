"""Clients of the Broker service: a partner's and an operator's."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grpc

from keynode.transport.status import error_from_rpc
from keynode.v1 import broker_pb2 as pb
from keynode.v1 import broker_pb2_grpc as pb_grpc


class _Client:
    def __init__(self, channel: grpc.Channel, *, target: str = "", timeout_s: float = 30.0):
        self._stub = pb_grpc.BrokerStub(channel)
        self._target = target
        self._timeout = timeout_s

    def _call(self, method: Callable[..., Any], request: object) -> Any:
        try:
            return method(request, timeout=self._timeout)
        except grpc.RpcError as err:
            raise error_from_rpc(err, self._target) from None


class PartnerBrokerClient(_Client):
    """What a partner asks the broker: its standing, grants, leases; its resignation."""

    def standing(self) -> pb.PartnerStanding:
        result: pb.PartnerStanding = self._call(self._stub.GetStanding, pb.GetStandingRequest())
        return result

    def catalogue(self) -> pb.Catalogue:
        result: pb.Catalogue = self._call(self._stub.GetCatalogue, pb.GetCatalogueRequest())
        return result

    def grant(self, operation: str, set_size: int = 0) -> pb.GrantResponse:
        """A signed grant for ``operation``; PolicyDenied/LimitExceeded when refused."""
        request = pb.GrantRequest(operation=operation, set_size=set_size)
        result: pb.GrantResponse = self._call(self._stub.RequestGrant, request)
        return result

    def lease_audience(self, segment: str) -> pb.LeaseAudienceResponse:
        token = self.grant("audience.lease").token
        request = pb.LeaseAudienceRequest(grant=token, segment=segment)
        result: pb.LeaseAudienceResponse = self._call(self._stub.LeaseAudience, request)
        return result

    def run_campaign(self, lease_id: str, tokens: Sequence[bytes], campaign: str) -> int:
        request = pb.RunCampaignRequest(lease_id=lease_id, tokens=tokens, campaign=campaign)
        return int(self._call(self._stub.RunCampaign, request).reached)

    def resign(self, reason: str) -> pb.ResignResponse:
        result: pb.ResignResponse = self._call(self._stub.Resign, pb.ResignRequest(reason=reason))
        return result


class OperatorClient(_Client):
    """The key-node operator's administration of partners, levels and policies."""

    def add_partner(self, partner: str, certificate_pem: bytes) -> pb.PartnerStanding:
        request = pb.AddPartnerRequest(partner=partner, certificate_pem=certificate_pem)
        result: pb.PartnerStanding = self._call(self._stub.AddPartner, request)
        return result

    def set_level(self, partner: str, level: int) -> pb.PartnerStanding:
        result: pb.PartnerStanding = self._call(
            self._stub.SetLevel, pb.SetLevelRequest(partner=partner, level=level)
        )
        return result

    def resign(self, partner: str, reason: str) -> pb.ResignResponse:
        request = pb.ResignPartnerRequest(partner=partner, reason=reason)
        result: pb.ResignResponse = self._call(self._stub.ResignPartner, request)
        return result

    def show(self, partner: str) -> pb.PartnerStanding:
        result: pb.PartnerStanding = self._call(
            self._stub.ShowPartner, pb.ShowPartnerRequest(partner=partner)
        )
        return result

    def partners(self) -> list[pb.PartnerStanding]:
        return list(self._call(self._stub.ListPartners, pb.ListPartnersRequest()).partners)

    def load_policy(self, body: bytes) -> pb.PolicyInfo:
        result: pb.PolicyInfo = self._call(self._stub.LoadPolicy, pb.LoadPolicyRequest(policy=body))
        return result

    def policy(self) -> pb.PolicyInfo:
        result: pb.PolicyInfo = self._call(self._stub.ShowPolicy, pb.ShowPolicyRequest())
        return result

    def sessions(self) -> list[pb.Session]:
        return list(self._call(self._stub.ListSessions, pb.ListSessionsRequest()).sessions)
