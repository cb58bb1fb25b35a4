"""ServerService: the server's description and its live settings (log level, models directory)."""

from __future__ import annotations

import importlib.metadata
import logging
import platform
import sys
from pathlib import Path

from server.core.engines import EngineState
from server.core.model_library import ModelLibrary
from server.errors import InvalidArgument
from tokenwire.v1 import server_service_pb2 as pb
from tokenwire.v1 import server_service_pb2_grpc as pb_grpc

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _gpu_offload() -> bool:
    from server.backends.llama_bindings import llama_cpp  # asks the build, not the machine

    return bool(llama_cpp.llama_supports_gpu_offload())


class ServerServicer(pb_grpc.ServerServiceServicer):
    def __init__(self, library: ModelLibrary, *, backends: tuple[str, ...], grpc_port: int,
                 log_level: str):
        self._library = library
        self._backends = backends
        self.grpc_port = grpc_port
        self._configured = pb.ServerConfig(models_directory=str(library.store.directory),
                                           log_level=log_level.upper())

    def _config(self) -> pb.ServerConfig:
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        return pb.ServerConfig(models_directory=str(self._library.store.directory), log_level=level)

    async def GetServerInfo(self, request: pb.GetServerInfoRequest, context) -> pb.GetServerInfoResponse:
        engines = self._library.engines
        return pb.GetServerInfoResponse(
            version=_version("tokenwire"), llama_cpp_version=_version("llama_cpp_python"),
            backends=self._backends, config=self._config(), grpc_port=self.grpc_port,
            catalog_models=len(self._library.catalog.entries()),
            local_models=len(self._library.store.list()),
            loaded_engines=sum(e.state is EngineState.LOADED for e in engines.engines()),
            default_engine_id=engines.default_id, platform=sys.platform,
            machine=platform.machine(), gpu_offload_supported=_gpu_offload())

    async def UpdateServerConfig(self, request: pb.UpdateServerConfigRequest,
                                 context) -> pb.UpdateServerConfigResponse:
        target = pb.ServerConfig()
        target.CopyFrom(self._configured if request.reset_to_defaults else self._config())
        if request.HasField("log_level"):
            level = request.log_level.upper()
            if level not in LOG_LEVELS:
                raise InvalidArgument.single("log_level", f"must be one of {', '.join(LOG_LEVELS)}")
            target.log_level = level
        if request.HasField("models_directory"):
            if not request.models_directory.strip() or "\0" in request.models_directory:
                raise InvalidArgument.single("models_directory", "must be a directory path")
            target.models_directory = request.models_directory
        try:
            directory = Path(target.models_directory).expanduser()
            directory.mkdir(parents=True, exist_ok=True)
        except RuntimeError as exc:  # "~user" of a user that does not exist
            raise InvalidArgument.single("models_directory", str(exc)) from None
        except OSError as exc:
            raise InvalidArgument.single(
                "models_directory", f"cannot create {target.models_directory}: "
                                    f"{exc.strerror or exc}") from None
        # Validated everything before changing anything: a refused update changes nothing.
        logging.getLogger().setLevel(target.log_level)
        self._library.store.directory = directory
        return pb.UpdateServerConfigResponse(config=self._config())
