"""Swagger UI as a person sees it: a real headless Chromium renders /docs from local assets."""

from __future__ import annotations

import subprocess
import tempfile

import pytest

from tests.e2e.browser import CHROMIUM, CHROMIUM_FLAGS


def rendered_dom(url: str) -> str:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed (Debian: apt-get install chromium; .ci/run does it)")
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                              "--virtual-time-budget=10000", "--dump-dom", url],
                             capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.parametrize("path", ["/docs", "/api/docs"])
def test_swagger_ui_renders_every_route_family(bridge, path):
    dom = rendered_dom(bridge.base_url + path)
    # Swagger UI builds these from /openapi.json in the browser: the page's scripts ran, under
    # its Content-Security-Policy, with only local assets.
    assert 'class="swagger-ui' in dom
    for route in ("/v1/chat/completions", "/v1/models/{model}:tokenize", "/v1/generate", "/v1/engines"):
        assert route in dom, f"{route} not rendered"
    assert dom.count("opblock-summary-path") >= 15
