"""GenerationService: validates through `convert`, runs on a leased engine, converts back."""

from __future__ import annotations

import uuid
from typing import Callable

import grpc

from server import convert
from server.core.engines import EngineManager
from server.core.side_work import SideWorkGate
from server.security.caller import caller_of
from tokenwire.v1 import generation_service_pb2 as pb
from tokenwire.v1 import generation_service_pb2_grpc as pb_grpc

REQUEST_ID_KEY = "x-request-id"


def _request_id(context: grpc.aio.ServicerContext) -> str:
    """A server-unique id; the client's x-request-id, if any, leads it for log correlation.
    (Clients choose their ids, so two concurrent requests may share one.)"""
    unique = uuid.uuid4().hex
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_KEY and value:
            return f"{value}/{unique}"
    return unique


class GenerationServicer(pb_grpc.GenerationServiceServicer):
    def __init__(self, engines: EngineManager, side_work: Callable[[], SideWorkGate]):
        self._engines = engines
        self._new_gate = side_work
        self._gates: dict[str, SideWorkGate] = {}  # engine id -> its gate for cheap calls

    async def _side_work(self, engine, context) -> None:
        """Waits, while the engine generates, for a cheap call's turn (server/core/side_work)."""
        gate = self._gates.get(engine.id)
        if gate is None:
            gate = self._gates[engine.id] = self._new_gate()
        await gate.admit(caller_of(context), engine.backend.generating)

    async def Generate(self, request: pb.GenerateRequest, context):
        domain = convert.generation_request_from_pb(request, request_id=_request_id(context))
        async with self._engines.lease(request.model) as engine:
            async for delta in self._engines.generate(engine, domain):
                yield convert.delta_to_pb(delta, engine.id)

    async def Complete(self, request: pb.CompleteRequest, context) -> pb.CompleteResponse:
        domain = convert.generation_request_from_pb(request, request_id=_request_id(context))
        async with self._engines.lease(request.model) as engine:
            deltas = [delta async for delta in self._engines.generate(engine, domain)]
        return convert.completion_to_pb(deltas, engine.id)

    async def Tokenize(self, request: pb.TokenizeRequest, context) -> pb.TokenizeResponse:
        async with self._engines.lease(request.model) as engine:
            await self._side_work(engine, context)
            ids = await engine.backend.tokenize(request.text, add_special=request.add_special_tokens,
                                                parse_special=request.parse_special_tokens)
        return pb.TokenizeResponse(token_ids=ids, model=engine.id)

    async def Embed(self, request: pb.EmbedRequest, context) -> pb.EmbedResponse:
        inputs = convert.embed_inputs_from_pb(request)
        async with self._engines.lease(request.model) as engine:
            embeddings = await engine.backend.embed(inputs, normalize=not request.skip_normalize)
        return convert.embeddings_to_pb(embeddings, engine.id)

    async def Detokenize(self, request: pb.DetokenizeRequest, context) -> pb.DetokenizeResponse:
        async with self._engines.lease(request.model) as engine:
            await self._side_work(engine, context)
            text = await engine.backend.detokenize(list(request.token_ids),
                                                   render_special=request.render_special_tokens)
        return pb.DetokenizeResponse(text=text, model=engine.id)
