"""Test helpers: a real server in a background event loop, and condition waits with deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import threading
import time
from typing import Any, Callable, Mapping

from server.app import TokenwireServer, create_server
from server.backends.registry import BACKENDS
from server.config import Settings, load_settings


def make_settings(**sections: Mapping[str, Any]) -> Settings:
    """Settings from defaults plus `sections`, bound to 127.0.0.1 on a free port, no env."""
    # A models directory and a session database of their own, so no test sees (or changes) the
    # user's; a test names a session database to restart on it. request_timeout: a loaded 2-core
    # test machine may need minutes for a long non-streamed answer; tests of the timeout itself
    # set their own. engine.n_ctx: the default sizes the cache from the model (8,192 tokens for each
    # of 4 sequences, about 720 MiB); a test server needs far less, and the tests of windows are
    # written against 1,024 tokens per sequence. tests/integration/test_context_sizing.py covers
    # the default.
    overrides: dict[str, dict[str, Any]] = {
        "server": {"host": "127.0.0.1", "grpc_port": 0, "request_timeout": 600},
        "engine": {"n_ctx": 4096},
        "model_store": {"directory": tempfile.mkdtemp(prefix="tokenwire-models-")},
        "sessions": {"store_path": f"{tempfile.mkdtemp(prefix='tokenwire-sessions-')}/sessions.db"},
    }
    for name, values in sections.items():
        if isinstance(values, Mapping):
            overrides.setdefault(name, {}).update(values)
        else:  # a list section, such as models
            overrides[name] = values
    return load_settings(environ={}, overrides=overrides)


class ServerThread:
    """Runs create_server() on its own event loop thread so tests can use the sync client."""

    def __init__(self, settings: Settings, backends=BACKENDS, **server_options: Any):
        self.settings = settings
        self.backends = backends
        self.server_options = server_options  # more create_server() keywords (e.g. catalog)
        self.loop = asyncio.new_event_loop()
        self.server: TokenwireServer | None = None
        self.port = 0
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def call(self, coro, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self, *, wait_loaded: bool = True) -> "ServerThread":
        self._thread.start()
        self.server, self.port = self.call(create_server(self.settings, backends=self.backends,
                                                         **self.server_options))
        if wait_loaded:
            self.call(self.server.wait_until_loaded())
        return self

    def backend(self, engine_id: str = "default"):
        return next(e.backend for e in self.server.engines.engines() if e.id == engine_id)

    def stop(self, grace: float = 5.0) -> None:
        if self.server is not None:
            self.call(self.server.shutdown(grace))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def wait_for(condition: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.005) -> Any:
    """Polls `condition` until it returns a truthy value; fails the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {condition}")
        time.sleep(interval)


@contextlib.contextmanager
def serve_with_bridge(settings: Settings, *, wait_loaded: bool = True, **bridge: Any):
    """A server with `settings` and an in-process bridge (Flask test client) in front of it,
    holding the suite's bridge secret (believed by servers configured with it)."""
    import grpc

    from rest_bridge import create_app
    from rest_bridge.config import BridgeConfig
    from tests.sentinel import BRIDGE_SECRET

    server = ServerThread(settings).start(wait_loaded=wait_loaded)
    try:
        with grpc.insecure_channel(server.target) as channel:
            config = BridgeConfig(grpc_target=server.target, bridge_secret=BRIDGE_SECRET,
                                  **{"request_timeout_s": 600, **bridge})
            app = create_app(config, channel=channel)
            app.testing = True
            yield server, app.test_client()
    finally:
        server.stop()
