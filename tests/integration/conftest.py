"""Fixtures shared by the download tests: the embedded model served over HTTP on 127.0.0.1 (as
tests.file_server.SERVED_GGUF), its SHA-256, an empty models directory, and a server that
downloads into it (`dl_server`, with a client `dl` and the REST bridge in front, `dl_http`); one
of each per module. A module that needs other files defines its own `files`, one that needs a
catalog its own `dl_server` (from `download_settings`)."""

from __future__ import annotations

import hashlib

import grpc
import pytest

from rest_bridge import create_app
from rest_bridge.config import BridgeConfig
from tests.file_server import SERVED_GGUF, serving_embedded_gguf
from tests.helpers import ServerThread, make_settings
from tokenwire import Client


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    with serving_embedded_gguf(tmp_path_factory.mktemp("served"), SERVED_GGUF) as served:
        yield served


@pytest.fixture(scope="module")
def gguf_sha256(files) -> str:
    return hashlib.sha256((files.root / SERVED_GGUF).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


def download_settings(models_dir):
    """Downloads into `models_dir` from loopback servers, with quick retries and progress."""
    return make_settings(
        model_store={"directory": str(models_dir)},
        downloads={"allow_private_addresses": True, "max_retries": 2,
                   "retry_backoff_seconds": 0.01, "progress_interval_seconds": 0.05})


@pytest.fixture(scope="module")
def dl_server(models_dir):
    running = ServerThread(download_settings(models_dir)).start()
    yield running
    running.stop()


@pytest.fixture
def dl(dl_server):
    with Client(dl_server.target, timeout=240) as c:
        yield c


@pytest.fixture(scope="module")
def dl_http(dl_server):
    """The REST bridge (in process) in front of the download server."""
    with grpc.insecure_channel(dl_server.target) as channel:
        app = create_app(BridgeConfig(grpc_target=dl_server.target, request_timeout_s=600),
                         channel=channel)
        app.testing = True
        yield app.test_client()
