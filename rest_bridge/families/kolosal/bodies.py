"""Kolosal Server's (doc 000) request and response bodies: what its routes read, convert to
protobuf (`to_pb`) and answer (`from_pb`, `.body()`); the same models document them."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated

from pydantic import ConfigDict, Field, create_model, model_serializer

from rest_bridge.bodies import Answer, Body, Given
from rest_bridge.model_views import DOWNLOAD_STATUS, DOWNLOAD_TYPE, engine_status, megabytes
from tokenwire.v1 import auth_service_pb2 as auth_pb
from tokenwire.v1 import download_service_pb2 as download_pb
from tokenwire.v1 import engine_service_pb2 as engine_pb

NAMESPACE = "kolosal"
STATUS = defaultdict(lambda: "unknown", DOWNLOAD_STATUS)
TYPE = defaultdict(lambda: "regular", DOWNLOAD_TYPE)
Positive = Annotated[int, Field(json_schema_extra={"minimum": 1})]  # the server checks minimums
Count = Annotated[int, Field(json_schema_extra={"minimum": 0})]
_PROTO_NAMES = {"window_size": "window_seconds", "burst": "burst_per_second",
                "max_age": "max_age_seconds"}


def copy(model, message, **fields):
    """`model` from `message`'s fields of the same names, and `fields`."""
    return model(**{n: getattr(message, n) for n in model.model_fields if n not in fields},
                 **fields)


def _example(example: dict, **config) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [example]}, **config)


def _not_sent_is_unchanged(schema: dict) -> None:
    for member in schema["properties"].values():
        member.pop("default", None)  # None marks a member not sent: null itself is refused


class _Update(Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_not_sent_is_unchanged)


def _shape(name: str, base: type = Answer, **fields):
    """A plain answer object; with `_Update`, a section of the PUT whose members are optional."""
    if base is _Update:
        fields = {n: kind if n.startswith("__") else (kind, None) for n, kind in fields.items()}
    return create_model(name, __base__=base, **fields)


Strings = list[str]
_ENGINE = {"engine_id": "llama-7b", "status": "loaded", "model_path": "/path/to/model.gguf"}
_PARAMETERS = {"n_ctx": 4096, "n_gpu_layers": 50, "main_gpu_id": 0}
ErrorDetail = _shape("ErrorDetail", message=str, type=str, param=str | None, code=str | None)
Error = _shape("Error", __doc__="Kolosal's error body (OpenAI's shape), on every route.", error=(
    ErrorDetail, Field(examples=[{"message": "engine 'x' not found", "type": "not_found_error",
                                  "param": None, "code": "model_not_found"}])))
Parameters = _shape("Parameters", n_ctx=int, n_gpu_layers=int, main_gpu_id=int)
MemoryUsage = _shape("MemoryUsage", model_size_mb=float, context_size_mb=float)
Performance = _shape("Performance", last_inference_tps=float, total_requests=int)
EngineSummary = _shape("EngineSummary", engine_id=str, status=str, model_path=str, is_default=bool)
EngineList = _shape("EngineList", engines=(list[EngineSummary], Field(
    description="The default engine first.", examples=[[{**_ENGINE, "is_default": True}]])))
EngineRemoved = _shape("EngineRemoved", engine_id=str, status=(str, "removed"),
                       message=(str, "Engine removed successfully"))
DownloadStarted = _shape(
    "DownloadStarted", __doc__="202: the engine is created when the download completes.",
    engine_id=str, status=(str, "downloading"), model_path=str, download_id=str,
    message=(str, "Download started; the engine is created when it completes"), progress_url=str)
Progress = _shape("Progress", downloaded_bytes=int, total_bytes=int | None, percentage=float,
                  download_speed_bps=int)
Timing = _shape("Timing", start_time=(int, Field(description="Unix milliseconds.")),
                elapsed_seconds=float, estimated_remaining_seconds=float | None)
EngineCreation = _shape("EngineCreation", engine_id=str, load_immediately=bool)
DownloadFailure = _shape("DownloadFailure", message=str, reason=str)
CancelledDownload = _shape("CancelledDownload", model_id=str, previous_status=str,
                           download_type=str)
FailedCancellation = _shape("FailedCancellation", model_id=str, status=str, reason=str)
CancelSummary = _shape("CancelSummary", total_downloads=int, successful_cancellations=int,
                       failed_cancellations=int, startup_cancellations=int,
                       regular_cancellations=int)
KeyLimit = _shape("KeyLimit", __doc__="One key's own limits; null: the default's.",
                  max_requests=int | None, window_seconds=int | None, burst=int | None)
RateLimiter = _shape("RateLimiter", enabled=bool, max_requests=int, window_seconds=int, burst=(
    int, Field(description="Most requests in one second; 0: no cap.")), per_key=(
    dict[str, KeyLimit], Field(description="Limits of their own for some API keys, by key id "
                               "(`key:` and 12 hex digits, as the stats name clients).")))
Cors = _shape("Cors", enabled=bool, allowed_origins=Strings, allowed_methods=Strings,
              allowed_headers=Strings, allow_credentials=bool,
              max_age=(int, Field(description="Preflight cache duration in seconds.")))
ApiKeys = _shape("ApiKeys", enabled=bool, required=bool, header_name=str, keys_count=int,
                 admin_keys_count=int)
ClientStats = _shape("ClientStats", request_count=int, remaining=int, reset_seconds=int)
RateLimitStats = _shape("RateLimitStats", total_clients=int, clients=(dict[str, ClientStats], Field(
    description="By client address, or `key:` and a key fingerprint.")))
AuthStats = _shape("AuthStats", rate_limit_stats=RateLimitStats)
Cleared = _shape("Cleared", message=str, cleared_clients=int)
KeyLimitUpdate = _shape("KeyLimitUpdate", _Update, max_requests=Positive, window_size=Positive,
                        window_seconds=Positive, burst=Count,
                        __doc__="What a key's entry leaves out is the default limit.")
RateLimiterUpdate = _shape("RateLimiterUpdate", _Update, enabled=bool, max_requests=Positive,
                           window_size=Positive, window_seconds=Positive, burst=Count,
                           per_key=Annotated[dict[str, KeyLimitUpdate], Field(
                               description="Replaces every key's own limits ({} removes them): "
                               "by API key or key id; a key is kept as its key id only.")],
                           __doc__="`window_size` is Kolosal's name for `window_seconds`.")
CorsUpdate = _shape("CorsUpdate", _Update, enabled=bool, allowed_origins=Strings,
                    allowed_methods=Strings, allowed_headers=Strings, allow_credentials=bool,
                    max_age=Count)
RateLimiterUpdate.PROTO = auth_pb.RateLimitUpdate
RateLimiterUpdate.PROTO_FIELDS = {"window_size": "window_seconds", "burst": "burst_per_second"}
KeyLimitUpdate.PROTO, KeyLimitUpdate.PROTO_FIELDS = (auth_pb.KeyRateLimit,
                                                     RateLimiterUpdate.PROTO_FIELDS)
CorsUpdate.PROTO, CorsUpdate.PROTO_FIELDS = auth_pb.CorsUpdate, {"max_age": "max_age_seconds"}
ApiKeysUpdate = _shape("ApiKeysUpdate", _Update, enabled=bool, required=bool, header_name=str,
                       api_keys=Strings, admin_api_keys=Strings,
                       __doc__="`api_keys` and `admin_api_keys` replace the keys.")


class AddEngine(Body):
    model_config = _example({"engine_id": "llama-7b", "model_path": "/path/to/model.gguf",
                             **_PARAMETERS, "use_mmap": True, "load_immediately": True})

    PROTO = engine_pb.AddEngineRequest
    PROTO_FIELDS = {n: f"params.{n}" for n in ("n_ctx", "n_gpu_layers", "main_gpu_id",
                                               "n_parallel", "n_threads", "n_batch")}

    engine_id: Given
    model_path: Given
    """A GGUF path on the server, a local or catalog model name, or an http(s) URL."""
    n_ctx: int | None = None
    n_gpu_layers: int | None = None
    main_gpu_id: int | None = None
    n_parallel: int | None = None
    n_threads: int | None = None
    n_batch: int | None = None
    use_mmap: bool | None = None
    use_mlock: bool | None = None
    load_immediately: bool | None = None

    def to_pb(self) -> engine_pb.AddEngineRequest:
        params = self.model_dump(exclude={"engine_id", "model_path", "load_immediately"})
        return engine_pb.AddEngineRequest(engine_id=self.engine_id, model=self.model_path,
                                          params=engine_pb.LoadParams(**params),
                                          load_immediately=self.load_immediately)


class EngineAdded(Answer):
    model_config = _example({**_ENGINE, "parameters": _PARAMETERS})

    engine_id: str
    status: str
    model_path: str
    parameters: Parameters

    @classmethod
    def from_pb(cls, e: engine_pb.Engine, **fields):
        return copy(cls, e, status=engine_status(e), parameters=copy(Parameters, e.params),
                    **fields)


class EngineStatus(EngineAdded):
    model_config = _example({
        **_ENGINE, "parameters": _PARAMETERS, "is_default": True, "error": None,
        "memory_usage": {"model_size_mb": 3584.0, "context_size_mb": 128.0},
        "performance": {"last_inference_tps": 42.5, "total_requests": 157}})

    memory_usage: MemoryUsage
    performance: Performance
    is_default: bool
    error: str | None

    @classmethod
    def from_pb(cls, e: engine_pb.Engine) -> EngineStatus:
        return super().from_pb(e, error=e.error or None, memory_usage=MemoryUsage(
            model_size_mb=megabytes(e.memory.model_bytes),
            context_size_mb=megabytes(e.memory.context_bytes)), performance=Performance(
            last_inference_tps=round(e.last_tokens_per_second, 2), total_requests=e.requests_total))


class DownloadProgress(Answer):
    model_config = _example({
        "model_id": "my-model", "status": "downloading", "download_type": "regular",
        "url": "https://huggingface.co/model/file.gguf", "local_path": "/models/file.gguf",
        "progress": {"downloaded_bytes": 1048576, "total_bytes": 10485760, "percentage": 10.0,
                     "download_speed_bps": 524288}, "download_id": "dl-0123456789abcdef",
        "timing": {"start_time": 1703097600000, "elapsed_seconds": 10.0,
                   "estimated_remaining_seconds": 90.0}})

    model_id: str
    status: str
    download_type: str
    url: str
    local_path: str
    progress: Progress
    timing: Timing
    download_id: str
    engine_creation: EngineCreation | None = None
    """Present when an engine is created at the end."""
    error: DownloadFailure | None = None
    """Present when the download failed."""

    @model_serializer(mode="wrap")
    def _sparse(self, handler):
        return {k: v for k, v in handler(self).items()
                if v is not None or k not in ("engine_creation", "error")}

    @classmethod
    def from_pb(cls, d: download_pb.Download) -> DownloadProgress:
        eta = round(d.eta_seconds, 1) if d.HasField("eta_seconds") else None
        return copy(
            cls, d, status=STATUS[d.status], download_type=TYPE[d.download_type],
            engine_creation=EngineCreation(engine_id=d.model_id, load_immediately=True)
            if d.auto_load else None,
            error=DownloadFailure(message=d.error, reason=d.error_reason) if d.error else None,
            progress=Progress(downloaded_bytes=d.downloaded_bytes, percentage=round(d.percent, 2),
                              total_bytes=d.total_bytes if d.HasField("total_bytes") else None,
                              download_speed_bps=round(d.speed_bytes_per_second)),
            timing=Timing(start_time=d.start_time_unix_ms, estimated_remaining_seconds=eta,
                          elapsed_seconds=round(d.elapsed_seconds, 1)))


ActiveDownloads = _shape("ActiveDownloads", active_downloads=list[DownloadProgress],
                         total_active=int, timestamp=int)
DownloadCancelled = create_model("DownloadCancelled", __base__=CancelledDownload, success=(
    bool, True), message=(str, "Download cancelled successfully"), timestamp=int)


class BulkCancellation(Answer):
    success: bool = True
    message: str = "Bulk download cancellation completed"
    summary: CancelSummary
    cancelled_downloads: list[CancelledDownload]
    failed_cancellations: list[FailedCancellation]

    @classmethod
    def from_pb(cls, a: download_pb.CancelAllDownloadsResponse) -> BulkCancellation:
        return cls(summary=copy(CancelSummary, a.summary), cancelled_downloads=[
            copy(CancelledDownload, c, previous_status=STATUS[c.previous_status],
                 download_type=TYPE[c.download_type]) for c in a.cancelled_downloads],
            failed_cancellations=[copy(FailedCancellation, f, status=STATUS[f.status])
                                  for f in a.failed_cancellations])


class AuthConfig(Answer):
    """The live settings: key counts, never keys."""

    rate_limiter: RateLimiter
    cors: Cors
    api_key: ApiKeys

    @classmethod
    def from_pb(cls, c: auth_pb.AuthConfig) -> AuthConfig:
        rl = c.rate_limiter
        return cls(rate_limiter=copy(RateLimiter, rl, burst=rl.burst_per_second, per_key={
            key_id: KeyLimit(**{name: getattr(own, field) if own.HasField(field) else None
                                for name in KeyLimit.model_fields
                                for field in [_PROTO_NAMES.get(name, name)]})
            for key_id, own in rl.per_key.items()}),
                   cors=copy(Cors, c.cors, max_age=c.cors.max_age_seconds),
                   api_key=copy(ApiKeys, c.api_key))


class AuthConfigUpdate(Body):
    """Only the members sent change; nothing changes when any value is invalid."""

    model_config = _example({"rate_limiter": {"max_requests": 100, "window_size": 60},
                             "cors": {"allowed_origins": ["https://app.example"]}}, extra="forbid")

    rate_limiter: RateLimiterUpdate = Field(default_factory=RateLimiterUpdate)
    cors: CorsUpdate = Field(default_factory=CorsUpdate)
    api_key: ApiKeysUpdate = Field(default_factory=ApiKeysUpdate)

    def to_pb(self) -> auth_pb.UpdateAuthConfigRequest:
        return auth_pb.UpdateAuthConfigRequest(**{
            section: _proto_members(members)
            for section, members in self.model_dump(exclude_unset=True).items()})


def _proto_members(members: dict) -> dict:
    """A section as sent -> its protobuf message's members (lists and the per-key table are
    messages of their own there, so that sending one empty means "none")."""
    def value(name, given):
        if isinstance(given, list):
            return {"values": given}
        if isinstance(given, dict):  # the per-key table
            return {"limits": {key: _proto_members(limits) for key, limits in given.items()}}
        return given

    return {_PROTO_NAMES.get(name, name): value(name, given) for name, given in members.items()}


class ClearRequest(Body):
    """One client's counts (`client_ip`), or everyone's (`clear_all`)."""

    model_config = _example({"clear_all": True})

    client_ip: str | None = Field(None, min_length=1)
    """A client address, or `key:` and a key fingerprint."""
    clear_all: bool = False

    def to_pb(self) -> auth_pb.ClearRateLimitsRequest:
        return auth_pb.ClearRateLimitsRequest(client_id=self.client_ip, clear_all=self.clear_all)
