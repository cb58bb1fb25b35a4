"""The monitoring servicers (hardware, metrics, status, logs, benchmark): each call asks
server.monitoring for a dict keyed by proto field names and converts it with ParseDict."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from google.protobuf import json_format

from server import __version__
from server.errors import InvalidArgument
from server.monitoring.benchmark import run_benchmark
from tokenwire.v1 import (benchmark_service_pb2, benchmark_service_pb2_grpc, hardware_service_pb2,
                          hardware_service_pb2_grpc, log_service_pb2, log_service_pb2_grpc,
                          metrics_service_pb2, metrics_service_pb2_grpc, status_service_pb2,
                          status_service_pb2_grpc)

if TYPE_CHECKING:
    from server.monitoring.hub import Monitoring

MIN_WATCH_INTERVAL_MS, MAX_WATCH_INTERVAL_MS = 100, 3_600_000
DEFAULT_LOG_COUNT = 100


def _pb(message_type, data: dict):
    return json_format.ParseDict(data, message_type(), ignore_unknown_fields=False)


class HardwareServicer(hardware_service_pb2_grpc.HardwareServiceServicer):
    def __init__(self, monitoring: "Monitoring"):
        self.m = monitoring

    async def GetHardwareInfo(self, request, context):
        info = await asyncio.to_thread(self.m.hardware.info, __version__)
        return _pb(hardware_service_pb2.GetHardwareInfoResponse, info)

    async def GetHardwareMetrics(self, request, context):
        metrics = await asyncio.to_thread(self.m.hardware.metrics)
        return hardware_service_pb2.GetHardwareMetricsResponse(
            metrics=_pb(hardware_service_pb2.HardwareMetrics, metrics))

    async def WatchHardwareMetrics(self, request, context):
        interval = request.interval_ms if request.HasField("interval_ms") else 1000
        if not MIN_WATCH_INTERVAL_MS <= interval <= MAX_WATCH_INTERVAL_MS:
            raise InvalidArgument.single(
                "interval_ms", f"must be between {MIN_WATCH_INTERVAL_MS} and {MAX_WATCH_INTERVAL_MS}, got {interval}")
        while not self.m.engines.draining:
            metrics = await asyncio.to_thread(self.m.hardware.metrics)
            yield hardware_service_pb2.WatchHardwareMetricsResponse(
                metrics=_pb(hardware_service_pb2.HardwareMetrics, metrics))
            await self.m.wait_draining(interval / 1000)

    async def GetPerformanceMode(self, request, context):
        return _pb(hardware_service_pb2.GetPerformanceModeResponse, _mode_report(self.m.tuner.report()))

    async def SetPerformanceMode(self, request, context):
        if request.mode == hardware_service_pb2.PERFORMANCE_MODE_UNSPECIFIED:
            raise InvalidArgument.single("mode", "choose efficiency, balanced or performance")
        name = hardware_service_pb2.PerformanceMode.Name(request.mode).removeprefix("PERFORMANCE_MODE_").lower()
        return _pb(hardware_service_pb2.SetPerformanceModeResponse, _mode_report(self.m.tuner.apply(name)))


def _mode_report(report: dict) -> dict:
    return {**report, "mode": "PERFORMANCE_MODE_" + report["mode"].upper()}


class MetricsServicer(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, monitoring: "Monitoring"):
        self.m = monitoring

    async def GetPrometheusMetrics(self, request, context):
        openmetrics = request.format == metrics_service_pb2.EXPOSITION_FORMAT_OPENMETRICS
        text, content_type = await asyncio.to_thread(self.m.metrics.exposition, openmetrics)
        return metrics_service_pb2.GetPrometheusMetricsResponse(text=text, content_type=content_type)

    async def GetMetricsSnapshot(self, request, context):
        snapshot = await asyncio.to_thread(self.m.metrics.snapshot)
        return _pb(metrics_service_pb2.GetMetricsSnapshotResponse, snapshot)

    async def WatchInferenceStats(self, request, context):
        finished: asyncio.Queue = asyncio.Queue(maxsize=1000)

        def offer(stats: dict) -> None:
            if not finished.full():  # a slow watcher misses figures rather than holding memory
                finished.put_nowait(stats)

        unsubscribe = self.m.metrics.subscribe(offer)
        draining = asyncio.ensure_future(self.m.wait_draining(None))
        got = None
        try:
            while not self.m.draining:
                got = asyncio.ensure_future(finished.get())
                done, _ = await asyncio.wait({got, draining}, return_when=asyncio.FIRST_COMPLETED)
                if got not in done:
                    return
                yield metrics_service_pb2.WatchInferenceStatsResponse(
                    stats=_pb(metrics_service_pb2.InferenceStats, got.result()))
        finally:
            # Both waits are tasks of their own: cancel them, or they outlive the call.
            for task in (got, draining):
                if task is not None:
                    task.cancel()
            unsubscribe()


class StatusServicer(status_service_pb2_grpc.StatusServiceServicer):
    def __init__(self, monitoring: "Monitoring"):
        self.m = monitoring

    async def GetStatus(self, request, context):
        return _pb(status_service_pb2.GetStatusResponse, self.m.status.status())

    async def WatchStatus(self, request, context):
        watcher = self.m.watch_status()
        try:
            while True:
                status = self.m.status.status()
                yield status_service_pb2.WatchStatusResponse(
                    status=_pb(status_service_pb2.GetStatusResponse, status))
                if status["draining"]:
                    return
                await watcher.get()
                while not watcher.empty():  # several changes at once: one report
                    watcher.get_nowait()
        finally:
            self.m.unwatch_status(watcher)


class LogServicer(log_service_pb2_grpc.LogServiceServicer):
    def __init__(self, monitoring: "Monitoring"):
        self.m = monitoring

    def _check(self, name: str, value: int, low: int) -> None:
        capacity = self.m.logs.capacity
        if not low <= value <= capacity:
            raise InvalidArgument.single(name, f"must be between {low} and {capacity}, got {value}")

    async def ListLogs(self, request, context):
        count = request.count if request.HasField("count") else DEFAULT_LOG_COUNT
        self._check("count", count, 1)
        return log_service_pb2.ListLogsResponse(
            records=[_pb(log_service_pb2.LogRecord, r) for r in self.m.logs.recent(count)])

    async def StreamLogs(self, request, context):
        backlog = request.backlog if request.HasField("backlog") else 0
        self._check("backlog", backlog, 0)
        history, queue = self.m.logs.subscribe(backlog)
        try:
            for record in history:
                yield log_service_pb2.StreamLogsResponse(record=_pb(log_service_pb2.LogRecord, record))
            while True:
                record = await queue.get()
                if record is None:  # the server is stopping
                    return
                yield log_service_pb2.StreamLogsResponse(record=_pb(log_service_pb2.LogRecord, record))
        finally:
            self.m.logs.unsubscribe(queue)


class BenchmarkServicer(benchmark_service_pb2_grpc.BenchmarkServiceServicer):
    def __init__(self, monitoring: "Monitoring"):
        self.m = monitoring

    async def RunBenchmark(self, request, context):
        def opt(name, default):
            return getattr(request, name) if request.HasField(name) else default

        result = await run_benchmark(
            self.m.engines, self.m.hardware, engine_id=request.engine_id,
            num_samples=opt("num_samples", 10), max_tokens=opt("max_tokens", 100),
            temperature=opt("temperature", 0.7), include_warmup=opt("include_warmup", True),
            include_memory_test=opt("include_memory_test", True))
        return _pb(benchmark_service_pb2.RunBenchmarkResponse, result)
