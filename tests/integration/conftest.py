"""Fixtures shared by the download tests: the embedded model served over HTTP on 127.0.0.1 (as
tests.file_server.SERVED_GGUF), its SHA-256, and an empty models directory; one of each per
module. A module that needs other files defines its own `files`."""

from __future__ import annotations

import hashlib

import pytest

from tests.file_server import SERVED_GGUF, serving_embedded_gguf


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
