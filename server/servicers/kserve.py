"""The Open Inference Protocol (KServe v2) service, `inference.GRPCInferenceService` as Triton
defines it: models are the engines, with the tensors of Triton's vLLM backend
(`server.servicers.kserve_tensors`), so the unmodified `tritonclient[grpc]` works against tokenwire.

ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata, ModelInfer (one response with
the whole text; `stream` true there is INVALID_ARGUMENT) and ModelStreamInfer (decoupled: the
requests of one stream run concurrently, each answered with one response per token delta when its
`stream` input is true, else with one response; responses carry the request's `id`). The other
methods of the service answer UNIMPLEMENTED.

Errors: a status code for the unary methods (unknown model NOT_FOUND, a bad tensor
INVALID_ARGUMENT naming it, through the server's error table); on ModelStreamInfer an error of one
request is that request's response with `error_message` set, as Triton does, and the stream goes
on. Authentication, rate limits and the concurrency limit apply as to every service (one stream
counts once); every method is a user method (server.security.access).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
import uuid

from server.servicers import kserve_tensors as tensors
from server.core.engines import Engine, EngineManager, EngineState
from server.errors import InvalidArgument, TokenwireError, Unimplemented
from server.interceptors import abort_with
from server.servicers.generation import _request_id
from tokenwire.inference import grpc_service_pb2 as pb
from tokenwire.inference import grpc_service_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
#: Requests of one ModelStreamInfer running at once; the stream's next request is read when one
#: finishes (flow control back to the client, instead of an unbounded backlog).
MAX_STREAM_IN_FLIGHT = 16
#: Responses buffered for a stream whose client reads slowly; generation waits beyond that.
STREAM_BUFFER = 256


def _server_version() -> str:
    try:
        return importlib.metadata.version("tokenwire")
    except importlib.metadata.PackageNotFoundError:
        return ""


class _StreamEnd:
    """What the reader puts on the response queue when every request has been answered, or the
    request stream failed (`error`)."""

    def __init__(self, error: BaseException | None = None):
        self.error = error


class KServeServicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, engines: EngineManager):
        self._engines = engines

    # -- health and metadata -------------------------------------------------------------------

    async def ServerLive(self, request, context) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request, context) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self._engines.ready)

    def _model(self, name: str, version: str, field: str) -> Engine:
        engine = self._engines.describe(tensors.require_name(name, field))  # NOT_FOUND
        tensors.check_version(engine.id, version)
        return engine

    async def ModelReady(self, request, context) -> pb.ModelReadyResponse:
        engine = self._model(request.name, request.version, "name")
        ready = not self._engines.draining and (
            engine.state is EngineState.LOADED
            or (engine.state is EngineState.UNLOADED and engine.lazy))  # loads on first use
        return pb.ModelReadyResponse(ready=ready)

    async def ServerMetadata(self, request, context) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name="tokenwire", version=_server_version(),
                                         extensions=[])

    async def ModelMetadata(self, request, context) -> pb.ModelMetadataResponse:
        engine = self._model(request.name, request.version, "name")
        return tensors.metadata(engine.id)

    # -- inference -----------------------------------------------------------------------------

    def _call(self, request: pb.ModelInferRequest, context) -> tensors.InferCall:
        self._model(request.model_name, request.model_version, "model_name")
        return tensors.infer_call(request, request_id=_request_id(context))

    async def ModelInfer(self, request, context) -> pb.ModelInferResponse:
        call = self._call(request, context)
        if call.stream:
            raise InvalidArgument.single(tensors.STREAM, "true needs ModelStreamInfer (the "
                                                         "model is decoupled: one response per "
                                                         "token delta)", reason="INVALID_TENSOR")
        async with self._engines.lease(call.model) as engine:
            return await self._whole(call, engine)

    async def _whole(self, call: tensors.InferCall, engine: Engine,
                     final: bool | None = None) -> pb.ModelInferResponse:
        pieces, finish, tokens = [], None, 0
        async for delta in self._engines.generate(engine, call.generation):
            pieces.append(delta.text)
            tokens += tensors.delta_tokens(delta)
            if delta.finish is not None:
                finish = delta.finish.reason
        text = (call.generation.prompt if call.prepend_input else "") + "".join(pieces)
        return tensors.infer_response(call, engine.id, text, finish=finish, tokens=tokens,
                                      final=final)

    async def ModelStreamInfer(self, request_iterator, context):
        responses: asyncio.Queue = asyncio.Queue(STREAM_BUFFER)
        reader = asyncio.create_task(self._read(request_iterator, context, responses))
        try:
            while True:
                item = await responses.get()
                if isinstance(item, _StreamEnd):
                    if item.error is not None:
                        # Bidi streams are not wrapped by the error interceptor: abort here.
                        await abort_with(context, item.error)
                    return
                yield item
        finally:
            reader.cancel()  # a client that left: its requests' generations stop now
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _read(self, request_iterator, context, responses: asyncio.Queue) -> None:
        slots = asyncio.Semaphore(MAX_STREAM_IN_FLIGHT)
        running: set[asyncio.Task] = set()

        def done(task: asyncio.Task) -> None:
            running.discard(task)
            slots.release()

        try:
            try:
                async for request in request_iterator:
                    await slots.acquire()
                    task = asyncio.create_task(self._stream_one(request, context, responses))
                    running.add(task)
                    task.add_done_callback(done)
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except Exception as exc:  # noqa: BLE001 - bytes that are not a ModelInferRequest
                log.info("ModelStreamInfer: unreadable request stream: %s", exc)
                await asyncio.gather(*running, return_exceptions=True)
                await responses.put(_StreamEnd(InvalidArgument.single(
                    "request", "a message of the stream is not a ModelInferRequest")))
                return
            await asyncio.gather(*running, return_exceptions=True)
            await responses.put(_StreamEnd())
        except BaseException:
            for task in list(running):
                task.cancel()
            raise

    async def _stream_one(self, request: pb.ModelInferRequest, context,
                          responses: asyncio.Queue) -> None:
        try:
            call = self._call(request, context)
            async with self._engines.lease(call.model) as engine:
                if not call.stream:
                    flag = True if call.final_response_flag else None
                    await responses.put(pb.ModelStreamInferResponse(
                        infer_response=await self._whole(call, engine, final=flag)))
                    return
                await self._stream_deltas(call, engine, responses)
        except asyncio.CancelledError:
            raise
        except TokenwireError as error:
            await responses.put(self._error(request, error.message))
        except Exception:  # noqa: BLE001 - reported in the stream, as for any failed request
            incident = uuid.uuid4().hex[:12]
            log.exception("ModelStreamInfer: unhandled error (incident %s)", incident)
            await responses.put(self._error(request, f"internal error (incident {incident})"))

    async def _stream_deltas(self, call: tensors.InferCall, engine: Engine,
                             responses: asyncio.Queue) -> None:
        flag = call.final_response_flag
        ended = False
        async for delta in self._engines.generate(engine, call.generation):
            last = delta.finish is not None
            if not delta.text and not (last and (flag or call.outputs != (tensors.TEXT_OUTPUT,))):
                # Nothing to say: a token that completes no character yet, or a last delta with
                # no text, when nobody asked for its end flag or its finish reason.
                continue
            ended = ended or last
            await responses.put(pb.ModelStreamInferResponse(infer_response=tensors.infer_response(
                call, engine.id, delta.text, finish=delta.finish.reason if last else None,
                tokens=tensors.delta_tokens(delta), final=last if flag else None)))
        if flag and not ended:
            await responses.put(pb.ModelStreamInferResponse(
                infer_response=tensors.final_empty_response(call, engine.id)))

    @staticmethod
    def _error(request: pb.ModelInferRequest, message: str) -> pb.ModelStreamInferResponse:
        return pb.ModelStreamInferResponse(
            error_message=message,
            infer_response=pb.ModelInferResponse(model_name=request.model_name,
                                                 model_version=request.model_version,
                                                 id=request.id))


IMPLEMENTED = ("ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata",
               "ModelInfer", "ModelStreamInfer")


def _unimplemented(name: str):
    async def method(self, request, context):
        raise Unimplemented(f"{SERVICE_NAME}/{name} is not implemented by this server (it "
                            f"implements {', '.join(IMPLEMENTED)})", reason="NOT_IMPLEMENTED")

    method.__name__ = name
    return method


# The generated base class answers the rest with NotImplementedError, which the error table
# would report as INTERNAL: say UNIMPLEMENTED instead.
for _method in pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].methods:
    if _method.name not in IMPLEMENTED:
        setattr(KServeServicer, _method.name, _unimplemented(_method.name))
