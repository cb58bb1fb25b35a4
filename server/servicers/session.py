"""SessionService: validates through `convert`, runs on the session manager, converts back."""

from __future__ import annotations

from server import convert
from server.core.sessions import SessionManager
from server.servicers.generation import _request_id
from tokenwire.v1 import session_service_pb2 as pb
from tokenwire.v1 import session_service_pb2_grpc as pb_grpc


class SessionServicer(pb_grpc.SessionServiceServicer):
    def __init__(self, sessions: SessionManager):
        self._sessions = sessions

    async def CreateSession(self, request: pb.CreateSessionRequest, context) -> pb.CreateSessionResponse:
        record = await self._sessions.create(convert.session_record_from_pb(request),
                                             convert.imported_messages_from_pb(request))
        return pb.CreateSessionResponse(session=convert.session_to_pb(record))

    async def ListSessions(self, request: pb.ListSessionsRequest, context) -> pb.ListSessionsResponse:
        records = await self._sessions.list()
        return pb.ListSessionsResponse(sessions=[convert.session_to_pb(r) for r in records])

    async def GetSession(self, request: pb.GetSessionRequest, context) -> pb.GetSessionResponse:
        record, messages = await self._sessions.get(request.session_id)
        return pb.GetSessionResponse(
            session=convert.session_to_pb(record),
            messages=[convert.chat_message_to_pb(m) for m in messages])

    async def DeleteSession(self, request: pb.DeleteSessionRequest, context) -> pb.DeleteSessionResponse:
        await self._sessions.delete(request.session_id)
        return pb.DeleteSessionResponse()

    async def RollbackSession(self, request: pb.RollbackSessionRequest,
                              context) -> pb.RollbackSessionResponse:
        record = await self._sessions.rollback(request.session_id, request.message_count)
        return pb.RollbackSessionResponse(session=convert.session_to_pb(record))

    async def BranchSession(self, request: pb.BranchSessionRequest, context) -> pb.BranchSessionResponse:
        new_id = convert.branch_id_from_pb(request)
        record = await self._sessions.branch(request.session_id, request.message_count, new_id or None)
        return pb.BranchSessionResponse(session=convert.session_to_pb(record))

    async def Chat(self, request: pb.ChatRequest, context):
        turn = convert.chat_turn_from_pb(request, request_id=_request_id(context))
        async for item in self._sessions.chat(turn):
            yield convert.turn_delta_to_pb(item)
