"""EngineService: what engines exist and in which state."""

from __future__ import annotations

from server import convert
from server.core.engines import EngineManager
from tokenwire.v1 import engine_service_pb2 as pb
from tokenwire.v1 import engine_service_pb2_grpc as pb_grpc


class EngineServicer(pb_grpc.EngineServiceServicer):
    def __init__(self, engines: EngineManager):
        self._engines = engines

    async def ListEngines(self, request: pb.ListEnginesRequest, context) -> pb.ListEnginesResponse:
        return pb.ListEnginesResponse(engines=[
            convert.engine_to_pb(e, is_default=e.id == self._engines.default_id)
            for e in self._engines.engines()])

    async def GetEngine(self, request: pb.GetEngineRequest, context) -> pb.GetEngineResponse:
        engine = self._engines.describe(request.engine_id)
        return pb.GetEngineResponse(
            engine=convert.engine_to_pb(engine, is_default=engine.id == self._engines.default_id))
