"""EngineService: what engines exist, and adding, loading, unloading, removing and switching them."""

from __future__ import annotations

import psutil

from server import convert
from server.config import Settings
from server.core.engines import EngineManager
from server.core.model_library import ModelLibrary
from server.downloads.engines import DownloadThenAdd
from server.errors import InvalidArgument, PreconditionFailed
from tokenwire.v1 import engine_service_pb2 as pb
from tokenwire.v1 import engine_service_pb2_grpc as pb_grpc


class EngineServicer(pb_grpc.EngineServiceServicer):
    def __init__(self, engines: EngineManager, library: ModelLibrary, settings: Settings, *,
                 backends: tuple[str, ...], download_then_add: DownloadThenAdd | None = None):
        self._engines = engines
        self._library = library
        self._settings = settings
        self._backends = backends
        self._download_then_add = download_then_add

    def _pb(self, engine) -> pb.Engine:
        message = convert.engine_to_pb(engine, is_default=engine.id == self._engines.default_id)
        message.aliases.extend(self._engines.aliases_of(engine))
        return message

    def _params(self, params: pb.LoadParams):
        return convert.check_resolved_load_params(
            self._settings.resolve_load_params(convert.load_params_from_pb(params)))

    async def ListEngines(self, request: pb.ListEnginesRequest, context) -> pb.ListEnginesResponse:
        return pb.ListEnginesResponse(engines=[self._pb(e) for e in self._engines.engines()],
                                      memory_budget_bytes=self._engines.budget_bytes(),
                                      memory_committed_bytes=self._engines.committed_bytes(),
                                      memory_available_bytes=psutil.virtual_memory().available)

    async def GetEngine(self, request: pb.GetEngineRequest, context) -> pb.GetEngineResponse:
        return pb.GetEngineResponse(engine=self._pb(self._engines.describe(request.engine_id)))

    async def AddEngine(self, request: pb.AddEngineRequest, context) -> pb.AddEngineResponse:
        backend = request.backend or "llama_cpp"
        if backend not in self._backends:
            raise InvalidArgument.single("backend", f"unknown backend '{backend}' (available: "
                                                    f"{', '.join(self._backends)})")
        resolved = self._library.resolve(request.model)
        engine_id = request.engine_id or resolved.suggested_engine_id
        self._library.check_engine_id(engine_id)
        params = self._params(request.params)
        load = request.load_immediately if request.HasField("load_immediately") else True
        if resolved.path is None:
            if self._download_then_add is None:
                raise PreconditionFailed(f"model '{request.model}' must be downloaded first",
                                         reason="MODEL_NOT_DOWNLOADED")
            # Starts a download that creates the engine when it completes.
            download_id = await self._download_then_add(resolved, engine_id, params, load,
                                                        request.sha256 or None)
            return pb.AddEngineResponse(download_id=download_id)
        engine = await self._engines.create(engine_id, str(resolved.path), params, load=load)
        return pb.AddEngineResponse(engine=self._pb(engine))

    async def LoadEngine(self, request: pb.LoadEngineRequest, context) -> pb.LoadEngineResponse:
        if request.force_reload:
            engine = await self._engines.reload(request.engine_id)
        else:
            engine = await self._engines.load(request.engine_id, raise_errors=True)
        return pb.LoadEngineResponse(engine=self._pb(engine))

    async def UnloadEngine(self, request: pb.UnloadEngineRequest, context) -> pb.UnloadEngineResponse:
        engine = await self._engines.unload(request.engine_id, force=request.force)
        return pb.UnloadEngineResponse(engine=self._pb(engine))

    async def RemoveEngine(self, request: pb.RemoveEngineRequest, context) -> pb.RemoveEngineResponse:
        engine = await self._engines.remove(request.engine_id, force=request.force)
        return pb.RemoveEngineResponse(engine=self._pb(engine))

    async def UnloadAllEngines(self, request: pb.UnloadAllEnginesRequest,
                               context) -> pb.UnloadAllEnginesResponse:
        ids = await self._engines.unload_all(force=request.force)
        return pb.UnloadAllEnginesResponse(unloaded_engine_ids=ids)

    async def SwitchDefaultEngine(self, request: pb.SwitchDefaultEngineRequest,
                                  context) -> pb.SwitchDefaultEngineResponse:
        if not request.engine_id and not request.model:
            raise InvalidArgument.single("model", "name the engine or the model to switch to",
                                         reason="MISSING_MODEL")
        known = {e.id for e in self._engines.engines()}
        # An engine by any of its names; a `model` only by its id or configured alias, since a
        # model reference (a file, a catalog name) gets an engine of its own as before.
        existing = (self._engines.lookup(request.engine_id) if request.engine_id
                    else self._engines.lookup_configured(request.model))
        if existing is not None:
            engine, previous = await self._engines.switch(existing.id)
        else:
            resolved = self._library.resolve(request.model or request.engine_id)
            if resolved.path is None:
                raise PreconditionFailed(f"model '{resolved.reference}' must be downloaded before "
                                         "it can serve", reason="MODEL_NOT_DOWNLOADED")
            engine_id = request.engine_id or resolved.suggested_engine_id
            self._library.check_engine_id(engine_id)
            if engine_id in known:
                engine, previous = await self._engines.switch(engine_id)
            else:
                params = self._params(request.params)
                engine, previous = await self._engines.switch(engine_id, str(resolved.path), params)
        return pb.SwitchDefaultEngineResponse(engine=self._pb(engine), previous_engine_id=previous)
