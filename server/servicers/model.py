"""ModelService: the local model store and the catalog."""

from __future__ import annotations

import asyncio

from server import convert
from server.core.model_library import ModelLibrary
from server.errors import InvalidArgument
from tokenwire.v1 import model_service_pb2 as pb
from tokenwire.v1 import model_service_pb2_grpc as pb_grpc


class ModelServicer(pb_grpc.ModelServiceServicer):
    def __init__(self, library: ModelLibrary):
        self._library = library

    async def ListLocalModels(self, request: pb.ListLocalModelsRequest,
                              context) -> pb.ListLocalModelsResponse:
        # Reading every file's GGUF header is disk I/O: off the event loop.
        states = await asyncio.to_thread(self._library.local_models)
        return pb.ListLocalModelsResponse(
            models=[convert.local_model_to_pb(m) for m in states],
            directory=str(self._library.store.directory))

    async def DeleteLocalModel(self, request: pb.DeleteLocalModelRequest,
                               context) -> pb.DeleteLocalModelResponse:
        model, removed = await self._library.delete(request.name, force=request.force)
        return pb.DeleteLocalModelResponse(name=model.name, freed_bytes=model.size_bytes,
                                           removed_engine_ids=removed)

    async def ListCatalogModels(self, request: pb.ListCatalogModelsRequest,
                                context) -> pb.ListCatalogModelsResponse:
        if request.max_size_bytes < 0:
            raise InvalidArgument.single("max_size_bytes", "must be >= 0")
        states = await asyncio.to_thread(self._library.catalog_models, category=request.category,
                                         max_size_bytes=request.max_size_bytes)
        return pb.ListCatalogModelsResponse(models=[convert.catalog_model_to_pb(s) for s in states],
                                            categories=self._library.catalog.categories())
