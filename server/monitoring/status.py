"""Liveness and readiness with the reasons, from the same EngineManager state that drives
grpc.health.v1, so the two never disagree."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import psutil

from server import __version__

if TYPE_CHECKING:
    from server.core.engines import EngineManager

# Below this much available memory the server reports the memory check as failing.
MIN_AVAILABLE_MEMORY_BYTES = 256 * 1024 * 1024


class StatusReporter:
    def __init__(self, engines: "EngineManager", *, grpc_port: int = 0):
        self.engines = engines
        self.grpc_port = grpc_port  # set once the server has bound its port
        self.started_at = time.time()
        self._started_monotonic = time.monotonic()
        psutil.cpu_percent()

    def status(self) -> dict:
        engines = self.engines.engines()
        counts = {state: sum(e.state.value == state for e in engines)
                  for state in ("loaded", "loading", "unloaded", "failed")}
        counts["total"] = len(engines)
        default = next((e for e in engines if e.id == self.engines.default_id), None)
        ready = self.engines.ready
        draining = self.engines.draining
        if draining:
            message = "draining: the server is shutting down"
        elif ready:
            message = "Ready"
        elif default is None:
            message = f"default engine '{self.engines.default_id}' is not configured"
        else:
            detail = f": {default.error}" if default.error else ""
            message = f"default engine '{default.id}' is {default.state.value}{detail}"
        available = psutil.virtual_memory().available
        failed = [e.id for e in engines if e.state.value == "failed"]
        checks = [
            {"key": "config", "name": "configuration", "healthy": True,
             "message": "Configuration loaded successfully"},
            {"key": "models", "name": "model_mapping", "healthy": ready and not failed,
             "message": f"{counts['total']} models configured, {counts['loaded']} loaded"
                        + (f", failed: {', '.join(failed)}" if failed else "")},
            {"key": "memory_available", "name": "memory", "healthy": available >= MIN_AVAILABLE_MEMORY_BYTES,
             "message": f"{available / 2**20:.0f} MiB available"},
            {"key": "draining", "name": "lifecycle", "healthy": not draining,
             "message": "shutting down" if draining else "accepting requests"},
        ]
        return {
            "live": True, "ready": ready, "draining": draining, "message": message,
            "version": __version__,
            "uptime_seconds": time.monotonic() - self._started_monotonic,
            "started_unix_ms": int(self.started_at * 1000),
            "engines": counts, "default_engine_id": self.engines.default_id,
            "checks": checks,
            "process_rss_bytes": psutil.Process().memory_info().rss,
            "cpu_usage_percent": psutil.cpu_percent(),
            "grpc_port": self.grpc_port,
            "requests_in_flight": sum(e.in_flight for e in engines),
            "engine_states": [{"engine_id": e.id, "status": "ENGINE_STATUS_" + e.state.value.upper(),
                               "error": e.error, "is_default": e.id == self.engines.default_id}
                              for e in engines],
        }
