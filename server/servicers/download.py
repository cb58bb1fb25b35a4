"""DownloadService: start, watch, list, get and cancel model downloads."""

from __future__ import annotations

from server import convert
from server.downloads.manager import DownloadManager
from tokenwire.v1 import download_service_pb2 as pb
from tokenwire.v1 import download_service_pb2_grpc as pb_grpc


class DownloadServicer(pb_grpc.DownloadServiceServicer):
    def __init__(self, downloads: DownloadManager):
        self._downloads = downloads

    async def StartDownload(self, request: pb.StartDownloadRequest, context) -> pb.StartDownloadResponse:
        download = await self._downloads.start_download(convert.download_request_from_pb(request))
        return pb.StartDownloadResponse(download=convert.download_to_pb(download))

    async def WatchDownload(self, request: pb.WatchDownloadRequest, context):
        async for download in self._downloads.watch(request.download_id, request.model_id):
            yield pb.WatchDownloadResponse(download=convert.download_to_pb(download))

    async def WatchDownloads(self, request: pb.WatchDownloadsRequest, context):
        async for download in self._downloads.watch_all():
            yield pb.WatchDownloadsResponse(download=convert.download_to_pb(download))

    async def ListDownloads(self, request: pb.ListDownloadsRequest, context) -> pb.ListDownloadsResponse:
        statuses = convert.download_statuses_from_pb(request.statuses)
        return pb.ListDownloadsResponse(downloads=[
            convert.download_to_pb(d) for d in self._downloads.list(request.model_id, statuses)])

    async def GetDownload(self, request: pb.GetDownloadRequest, context) -> pb.GetDownloadResponse:
        download = self._downloads.get(request.download_id, request.model_id)
        return pb.GetDownloadResponse(download=convert.download_to_pb(download))

    async def CancelDownload(self, request: pb.CancelDownloadRequest, context) -> pb.CancelDownloadResponse:
        outcome = await self._downloads.cancel(request.download_id, request.model_id)
        return pb.CancelDownloadResponse(
            cancelled=outcome.cancelled,
            previous_status=convert.download_status_to_pb(outcome.previous_status),
            download=convert.download_to_pb(outcome.download))

    async def CancelAllDownloads(self, request: pb.CancelAllDownloadsRequest,
                                 context) -> pb.CancelAllDownloadsResponse:
        return convert.cancel_all_to_pb(await self._downloads.cancel_all())
