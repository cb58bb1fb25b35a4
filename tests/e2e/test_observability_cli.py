"""`tokenwire serve` as operators run it: console span export continues the caller's trace through
the bridge into the server and the engine, and with the access log on, no secret reaches stderr."""

from __future__ import annotations

import signal

import requests

from tests.conftest import CAPITAL_QUESTION
from tests.e2e.cli_process import ServeProcess

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SENTINEL = "sk-e2e-sentinel-5c1d7e9a"


def test_console_tracing_and_a_redacted_access_log():
    served = ServeProcess("--trace-exporter", "console", "--enable-access-log", "--log-level",
                          "DEBUG").start()
    try:
        answer = requests.post(served.base_url + "/v1/chat/completions", timeout=120,
                               json={"messages": CAPITAL_QUESTION, "max_tokens": 4},
                               headers={"traceparent": f"00-{TRACE_ID}-b7ad6b7169203331-01",
                                        "Authorization": f"Bearer {SENTINEL}",
                                        "X-API-Key": SENTINEL})
        assert answer.status_code == 200
        # SIGTERM flushes the batch span processor; the spans are on stdout once it has exited.
        served.proc.send_signal(signal.SIGTERM)
        stdout, stderr = served.output(timeout=120)
        assert served.proc.returncode == 0
    finally:
        served.kill()
    # The server's RPC span and the engine's phases carry the trace id the HTTP client sent,
    # which only the bridge could have passed on (in gRPC metadata).
    assert f'"trace_id": "0x{TRACE_ID}"' in stdout
    for name in ("tokenwire.v1.GenerationService/Complete", "engine.prefill", "engine.decode"):
        assert f'"name": "{name}"' in stdout
    assert "rpc /tokenwire.v1.GenerationService/Complete OK" in stderr  # the access log is on
    assert SENTINEL not in stdout and SENTINEL not in stderr
