"""AuthService: the live security configuration (admin only; key values are write-only)."""

from __future__ import annotations

from server.errors import InvalidArgument
from server.security.access import access_of
from server.security.interceptor import authorize
from server.security.state import SecurityState
from tokenwire.v1 import auth_service_pb2 as pb
from tokenwire.v1 import auth_service_pb2_grpc


class AuthServicer(auth_service_pb2_grpc.AuthServiceServicer):
    def __init__(self, state: SecurityState):
        self.state = state

    async def GetAuthConfig(self, request, context):
        return pb.GetAuthConfigResponse(config=self.state.to_pb())

    async def UpdateAuthConfig(self, request, context):
        self.state.update(request)
        return pb.UpdateAuthConfigResponse(config=self.state.to_pb())

    async def GetAuthStats(self, request, context):
        clients = [pb.ClientStats(client_id=client, request_count=count, remaining=remaining,
                                  reset_seconds=reset)
                   for client, count, remaining, reset in self.state.limiter.stats()]
        return pb.GetAuthStatsResponse(total_clients=len(clients), clients=clients)

    async def ClearRateLimits(self, request, context):
        if request.clear_all:
            cleared = self.state.limiter.clear()
        elif request.HasField("client_id") and request.client_id:
            cleared = self.state.limiter.clear(request.client_id)
        else:
            raise InvalidArgument.single("client_id", "name a client, or set clear_all")
        return pb.ClearRateLimitsResponse(cleared_clients=cleared)

    async def GetBridgePolicy(self, request, context):
        return pb.GetBridgePolicyResponse(cors=self.state.cors.to_pb(),
                                          api_key_header=self.state.keys.header_name,
                                          local_clients_only=self.state.local_clients_only)

    async def CheckAccess(self, request, context):
        metadata = [(m.key, m.value) for m in context.invocation_metadata() or ()]
        for method in request.methods:
            path = method if method.startswith("/") else "/" + method
            authorize(self.state, metadata,
                      access_of(path, public_reflection=self.state.public_reflection))
        return pb.CheckAccessResponse()
