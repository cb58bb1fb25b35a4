"""Performance modes mapped to concrete engine settings (decode threads, prompt batch size).

balanced is what the configuration says; efficiency halves the threads and caps the prompt batch
at 128 tokens (less power, slower prefill); performance uses every physical core and the full
configured batch (the context was created for it, so nothing larger is possible without a reload).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.config import physical_cores

if TYPE_CHECKING:
    from server.config import Settings
    from server.core.engines import EngineManager

EFFICIENCY_MAX_BATCH = 128


def tuning_for(mode: str, configured_threads: int, configured_batch: int) -> tuple[int, int]:
    cores = physical_cores()
    if mode == "efficiency":
        return max(1, min(configured_threads, cores) // 2), max(1, min(configured_batch, EFFICIENCY_MAX_BATCH))
    if mode == "performance":
        return max(cores, configured_threads), configured_batch
    return configured_threads, configured_batch


class PerformanceTuner:
    def __init__(self, engines: "EngineManager", settings: "Settings"):
        self.engines = engines
        self.settings = settings
        self.mode = "balanced"

    @staticmethod
    def _configured(engine) -> tuple[int, int] | None:
        """The engine's own load params (so engines added at run time are covered too)."""
        params = getattr(engine.backend, "params", None)
        if params is None or not getattr(params, "n_batch", None):
            return None
        return params.n_threads or physical_cores(), params.n_batch

    def report(self) -> dict:
        engines = []
        for engine in self.engines.engines():
            tuning = engine.backend.tuning() if engine.state.value == "loaded" else None
            if tuning is not None:
                engines.append({"engine_id": engine.id, "n_threads": tuning[0], "n_batch": tuning[1]})
        return {"mode": self.mode, "engines": engines}

    def engines_changed(self) -> None:
        """An engine loaded after a mode was chosen gets the mode too."""
        if self.mode != "balanced":
            for engine in self.engines.engines():
                configured = self._configured(engine)
                if engine.state.value == "loaded" and configured:
                    wanted = tuning_for(self.mode, *configured)
                    if engine.backend.tuning() != wanted:
                        engine.backend.tune(n_threads=wanted[0], n_batch=wanted[1])

    def apply(self, mode: str) -> dict:
        self.mode = mode
        for engine in self.engines.engines():
            configured = self._configured(engine)
            if engine.state.value != "loaded" or configured is None:
                continue
            threads, batch = tuning_for(mode, *configured)
            engine.backend.tune(n_threads=threads, n_batch=batch)
        return self.report()
