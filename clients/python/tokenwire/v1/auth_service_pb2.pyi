from google.api import annotations_pb2 as _annotations_pb2
from tokenwire.v1 import access_pb2 as _access_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CheckAccessRequest(_message.Message):
    __slots__ = ("methods",)
    METHODS_FIELD_NUMBER: _ClassVar[int]
    methods: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, methods: _Optional[_Iterable[str]] = ...) -> None: ...

class CheckAccessResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RateLimitSettings(_message.Message):
    __slots__ = ("enabled", "max_requests", "window_seconds", "burst_per_second", "per_key")
    class PerKeyEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: KeyRateLimit
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[KeyRateLimit, _Mapping]] = ...) -> None: ...
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    MAX_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BURST_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    PER_KEY_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    max_requests: int
    window_seconds: int
    burst_per_second: int
    per_key: _containers.MessageMap[str, KeyRateLimit]
    def __init__(self, enabled: _Optional[bool] = ..., max_requests: _Optional[int] = ..., window_seconds: _Optional[int] = ..., burst_per_second: _Optional[int] = ..., per_key: _Optional[_Mapping[str, KeyRateLimit]] = ...) -> None: ...

class KeyRateLimit(_message.Message):
    __slots__ = ("max_requests", "window_seconds", "burst_per_second")
    MAX_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BURST_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    max_requests: int
    window_seconds: int
    burst_per_second: int
    def __init__(self, max_requests: _Optional[int] = ..., window_seconds: _Optional[int] = ..., burst_per_second: _Optional[int] = ...) -> None: ...

class PerKeyRateLimits(_message.Message):
    __slots__ = ("limits",)
    class LimitsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: KeyRateLimit
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[KeyRateLimit, _Mapping]] = ...) -> None: ...
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    limits: _containers.MessageMap[str, KeyRateLimit]
    def __init__(self, limits: _Optional[_Mapping[str, KeyRateLimit]] = ...) -> None: ...

class CorsSettings(_message.Message):
    __slots__ = ("enabled", "allowed_origins", "allowed_methods", "allowed_headers", "allow_credentials", "max_age_seconds")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_ORIGINS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_METHODS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_HEADERS_FIELD_NUMBER: _ClassVar[int]
    ALLOW_CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    allowed_origins: _containers.RepeatedScalarFieldContainer[str]
    allowed_methods: _containers.RepeatedScalarFieldContainer[str]
    allowed_headers: _containers.RepeatedScalarFieldContainer[str]
    allow_credentials: bool
    max_age_seconds: int
    def __init__(self, enabled: _Optional[bool] = ..., allowed_origins: _Optional[_Iterable[str]] = ..., allowed_methods: _Optional[_Iterable[str]] = ..., allowed_headers: _Optional[_Iterable[str]] = ..., allow_credentials: _Optional[bool] = ..., max_age_seconds: _Optional[int] = ...) -> None: ...

class ApiKeySettings(_message.Message):
    __slots__ = ("enabled", "required", "header_name", "keys_count", "admin_keys_count")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    HEADER_NAME_FIELD_NUMBER: _ClassVar[int]
    KEYS_COUNT_FIELD_NUMBER: _ClassVar[int]
    ADMIN_KEYS_COUNT_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    required: bool
    header_name: str
    keys_count: int
    admin_keys_count: int
    def __init__(self, enabled: _Optional[bool] = ..., required: _Optional[bool] = ..., header_name: _Optional[str] = ..., keys_count: _Optional[int] = ..., admin_keys_count: _Optional[int] = ...) -> None: ...

class AuthConfig(_message.Message):
    __slots__ = ("rate_limiter", "cors", "api_key")
    RATE_LIMITER_FIELD_NUMBER: _ClassVar[int]
    CORS_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    rate_limiter: RateLimitSettings
    cors: CorsSettings
    api_key: ApiKeySettings
    def __init__(self, rate_limiter: _Optional[_Union[RateLimitSettings, _Mapping]] = ..., cors: _Optional[_Union[CorsSettings, _Mapping]] = ..., api_key: _Optional[_Union[ApiKeySettings, _Mapping]] = ...) -> None: ...

class StringList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, values: _Optional[_Iterable[str]] = ...) -> None: ...

class RateLimitUpdate(_message.Message):
    __slots__ = ("enabled", "max_requests", "window_seconds", "burst_per_second", "per_key")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    MAX_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BURST_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    PER_KEY_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    max_requests: int
    window_seconds: int
    burst_per_second: int
    per_key: PerKeyRateLimits
    def __init__(self, enabled: _Optional[bool] = ..., max_requests: _Optional[int] = ..., window_seconds: _Optional[int] = ..., burst_per_second: _Optional[int] = ..., per_key: _Optional[_Union[PerKeyRateLimits, _Mapping]] = ...) -> None: ...

class CorsUpdate(_message.Message):
    __slots__ = ("enabled", "allowed_origins", "allowed_methods", "allowed_headers", "allow_credentials", "max_age_seconds")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_ORIGINS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_METHODS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_HEADERS_FIELD_NUMBER: _ClassVar[int]
    ALLOW_CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    allowed_origins: StringList
    allowed_methods: StringList
    allowed_headers: StringList
    allow_credentials: bool
    max_age_seconds: int
    def __init__(self, enabled: _Optional[bool] = ..., allowed_origins: _Optional[_Union[StringList, _Mapping]] = ..., allowed_methods: _Optional[_Union[StringList, _Mapping]] = ..., allowed_headers: _Optional[_Union[StringList, _Mapping]] = ..., allow_credentials: _Optional[bool] = ..., max_age_seconds: _Optional[int] = ...) -> None: ...

class ApiKeyUpdate(_message.Message):
    __slots__ = ("enabled", "required", "header_name", "api_keys", "admin_api_keys")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    HEADER_NAME_FIELD_NUMBER: _ClassVar[int]
    API_KEYS_FIELD_NUMBER: _ClassVar[int]
    ADMIN_API_KEYS_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    required: bool
    header_name: str
    api_keys: StringList
    admin_api_keys: StringList
    def __init__(self, enabled: _Optional[bool] = ..., required: _Optional[bool] = ..., header_name: _Optional[str] = ..., api_keys: _Optional[_Union[StringList, _Mapping]] = ..., admin_api_keys: _Optional[_Union[StringList, _Mapping]] = ...) -> None: ...

class GetAuthConfigRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetAuthConfigResponse(_message.Message):
    __slots__ = ("config",)
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: AuthConfig
    def __init__(self, config: _Optional[_Union[AuthConfig, _Mapping]] = ...) -> None: ...

class UpdateAuthConfigRequest(_message.Message):
    __slots__ = ("rate_limiter", "cors", "api_key")
    RATE_LIMITER_FIELD_NUMBER: _ClassVar[int]
    CORS_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    rate_limiter: RateLimitUpdate
    cors: CorsUpdate
    api_key: ApiKeyUpdate
    def __init__(self, rate_limiter: _Optional[_Union[RateLimitUpdate, _Mapping]] = ..., cors: _Optional[_Union[CorsUpdate, _Mapping]] = ..., api_key: _Optional[_Union[ApiKeyUpdate, _Mapping]] = ...) -> None: ...

class UpdateAuthConfigResponse(_message.Message):
    __slots__ = ("config",)
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: AuthConfig
    def __init__(self, config: _Optional[_Union[AuthConfig, _Mapping]] = ...) -> None: ...

class GetAuthStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ClientStats(_message.Message):
    __slots__ = ("client_id", "request_count", "remaining", "reset_seconds")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_COUNT_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    RESET_SECONDS_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    request_count: int
    remaining: int
    reset_seconds: int
    def __init__(self, client_id: _Optional[str] = ..., request_count: _Optional[int] = ..., remaining: _Optional[int] = ..., reset_seconds: _Optional[int] = ...) -> None: ...

class GetAuthStatsResponse(_message.Message):
    __slots__ = ("total_clients", "clients")
    TOTAL_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_FIELD_NUMBER: _ClassVar[int]
    total_clients: int
    clients: _containers.RepeatedCompositeFieldContainer[ClientStats]
    def __init__(self, total_clients: _Optional[int] = ..., clients: _Optional[_Iterable[_Union[ClientStats, _Mapping]]] = ...) -> None: ...

class ClearRateLimitsRequest(_message.Message):
    __slots__ = ("client_id", "clear_all")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLEAR_ALL_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    clear_all: bool
    def __init__(self, client_id: _Optional[str] = ..., clear_all: _Optional[bool] = ...) -> None: ...

class ClearRateLimitsResponse(_message.Message):
    __slots__ = ("cleared_clients",)
    CLEARED_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    cleared_clients: int
    def __init__(self, cleared_clients: _Optional[int] = ...) -> None: ...

class GetBridgePolicyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetBridgePolicyResponse(_message.Message):
    __slots__ = ("cors", "api_key_header", "local_clients_only")
    CORS_FIELD_NUMBER: _ClassVar[int]
    API_KEY_HEADER_FIELD_NUMBER: _ClassVar[int]
    LOCAL_CLIENTS_ONLY_FIELD_NUMBER: _ClassVar[int]
    cors: CorsSettings
    api_key_header: str
    local_clients_only: bool
    def __init__(self, cors: _Optional[_Union[CorsSettings, _Mapping]] = ..., api_key_header: _Optional[str] = ..., local_clients_only: _Optional[bool] = ...) -> None: ...
