"""`tokenwire models` lists a running server's local models and its catalog."""

from __future__ import annotations

import json
import subprocess

from tests.e2e.cli_process import TOKENWIRE


def _models(server, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([TOKENWIRE, "models", "--target", server.target, *args],
                          capture_output=True, text=True, timeout=120)


def test_models_lists_the_embedded_model_with_its_metadata(server):
    done = _models(server)
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()[1:]
    assert header.split() == ["NAME", "SIZE", "QUANT", "PARAMS", "ARCH", "ENGINES", "LOADED"]
    embedded = next(row for row in rows if "(embedded)" in row)
    assert "Q4_1" in embedded and "135M" in embedded and "llama" in embedded
    assert "default" in embedded and embedded.endswith("yes")


def test_models_catalog_as_json(server):
    done = _models(server, "--catalog", "--category", "small", "--json")
    assert done.returncode == 0, done.stderr
    models = json.loads(done.stdout)["models"]
    assert models and all("small" in m["categories"] for m in models)
    assert {"name", "model_id", "url", "size_bytes", "quantization"} <= set(models[0])


def test_models_against_no_server_fails_cleanly():
    done = subprocess.run([TOKENWIRE, "models", "--target", "127.0.0.1:1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "UNAVAILABLE" in done.stderr and "Traceback" not in done.stderr
