"""Typed views of DownloadService messages for the Python client."""

from __future__ import annotations

from dataclasses import dataclass

from tokenwire.v1 import download_service_pb2 as pb

_STATUS_NAMES = {
    pb.DOWNLOAD_STATUS_DOWNLOADING: "downloading",
    pb.DOWNLOAD_STATUS_CREATING_ENGINE: "creating_engine",
    pb.DOWNLOAD_STATUS_COMPLETED: "completed",
    pb.DOWNLOAD_STATUS_FAILED: "failed",
    pb.DOWNLOAD_STATUS_CANCELLED: "cancelled",
}
STATUS_VALUES = {name: value for value, name in _STATUS_NAMES.items()}
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
_TYPE_NAMES = {pb.DOWNLOAD_TYPE_REGULAR: "regular", pb.DOWNLOAD_TYPE_STARTUP: "startup"}


def status_name(value: int) -> str:
    return _STATUS_NAMES.get(value, "unspecified")


@dataclass(frozen=True)
class Download:
    """A download and its progress. `status` is one of downloading, creating_engine, completed,
    failed, cancelled; `error_reason` is a stable code when it failed (e.g. CHECKSUM_MISMATCH)."""

    download_id: str
    model_id: str
    url: str
    catalog_name: str
    filename: str
    local_path: str
    status: str
    download_type: str
    downloaded_bytes: int
    total_bytes: int | None
    percent: float
    speed_bytes_per_second: float
    eta_seconds: float | None
    resumed_from_bytes: int
    expected_sha256: str
    sha256: str
    auto_load: bool
    error: str
    error_reason: str
    http_status: int
    start_time_unix_ms: int
    end_time_unix_ms: int
    elapsed_seconds: float

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_pb(cls, d: pb.Download) -> "Download":
        return cls(
            download_id=d.download_id, model_id=d.model_id, url=d.url, catalog_name=d.catalog_name,
            filename=d.filename, local_path=d.local_path, status=status_name(d.status),
            download_type=_TYPE_NAMES.get(d.download_type, "unspecified"),
            downloaded_bytes=d.downloaded_bytes,
            total_bytes=d.total_bytes if d.HasField("total_bytes") else None,
            percent=d.percent, speed_bytes_per_second=d.speed_bytes_per_second,
            eta_seconds=d.eta_seconds if d.HasField("eta_seconds") else None,
            resumed_from_bytes=d.resumed_from_bytes, expected_sha256=d.expected_sha256,
            sha256=d.sha256, auto_load=d.auto_load, error=d.error, error_reason=d.error_reason,
            http_status=d.http_status, start_time_unix_ms=d.start_time_unix_ms,
            end_time_unix_ms=d.end_time_unix_ms, elapsed_seconds=d.elapsed_seconds)


@dataclass(frozen=True)
class CancelResult:
    """What cancel_download did: `cancelled` is False when the download had already ended."""

    cancelled: bool
    previous_status: str
    download: Download


@dataclass(frozen=True)
class CancelAllResult:
    """Kolosal's bulk cancellation summary, with the downloads on each side."""

    total_downloads: int
    successful_cancellations: int
    failed_cancellations: int
    startup_cancellations: int
    regular_cancellations: int
    cancelled: tuple[tuple[str, str, str], ...]  # (download_id, model_id, previous status)
    not_cancelled: tuple[tuple[str, str, str, str], ...]  # (download_id, model_id, status, reason)

    @classmethod
    def from_pb(cls, r: pb.CancelAllDownloadsResponse) -> "CancelAllResult":
        s = r.summary
        return cls(s.total_downloads, s.successful_cancellations, s.failed_cancellations,
                   s.startup_cancellations, s.regular_cancellations,
                   tuple((c.download_id, c.model_id, status_name(c.previous_status))
                         for c in r.cancelled_downloads),
                   tuple((f.download_id, f.model_id, status_name(f.status), f.reason)
                         for f in r.failed_cancellations))
