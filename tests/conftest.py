import logging

import grpc
import pytest

from tests.helpers import ServerThread, make_settings
from tokenwire import Client


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failure is printed the moment it happens, with how long the test ran: a run stopped by
    CI's time limit never reaches pytest's summary, and the failures are what explain it."""
    report = yield
    reporter = item.config.pluginmanager.get_plugin("terminalreporter")
    if report.failed and reporter is not None:
        reporter.write_line("")
        reporter.write_line(f"FAILED ({report.when}, {report.duration:.1f} s) {report.nodeid}",
                            red=True)
        for line in str(report.longrepr).splitlines()[-40:]:
            reporter.write_line(f"    {line}")
    return report


class _Recorder(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a record whose arguments do not format still has its template
            text = str(record.msg)
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.texts.append(text)


@pytest.fixture(scope="session", autouse=True)
def no_key_in_logs():
    """Every log record of the session, at every level, and the output of the server processes
    the tests start, must be free of the API keys the security tests use."""
    from tests import sentinel

    recorder = _Recorder()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(recorder)
    root.setLevel(logging.DEBUG)
    yield recorder
    root.removeHandler(recorder)
    root.setLevel(previous)
    leaks = [t for t in recorder.texts + sentinel.captured_output if sentinel.SENTINEL in t]
    assert not leaks, f"an API key reached the logs {len(leaks)} time(s)"


@pytest.fixture(autouse=True)
def keep_debug_logging(no_key_in_logs):
    """Tests that change the server's log level (Foundry's config, UpdateServerConfig) change
    the root logger of this process; every test starts at DEBUG again, so the sentinel check
    sees every record of every test."""
    logging.getLogger().setLevel(logging.DEBUG)
    yield


@pytest.fixture(scope="session")
def server():
    """The real server with the embedded SmolLM2 model, shared by the integration tests."""
    running = ServerThread(make_settings()).start()
    yield running
    running.stop()


@pytest.fixture
def client(server):
    # A deadline only as hang protection: a shared 2-core machine can be many times slower.
    with Client(server.target, timeout=240) as c:
        yield c


# SmolLM2-135M answers this question greedily with "Paris" when told to be brief; under its default
# system prompt it drifts into French prose instead (same tokens as llama-cpp-python's own chat).
@pytest.fixture(scope="session")
def bridge_app(server):
    """The REST bridge app (in-process, Flask test client), forwarding to the real server."""
    from rest_bridge import create_app
    from rest_bridge.config import BridgeConfig

    with grpc.insecure_channel(server.target) as channel:
        app = create_app(BridgeConfig(grpc_target=server.target, max_request_size=64 * 1024,
                                      request_timeout_s=600), channel=channel)
        app.testing = True
        yield app


@pytest.fixture(scope="session")
def bridge(server):
    """The REST bridge over real HTTP in front of the real server, as `tokenwire serve` runs it by
    default: werkzeug's threaded server (`tokenwire bridge --runtime in-process`). Tests that need
    gunicorn start their own BridgeProcess."""
    from tests.e2e.cli_process import BridgeProcess

    running = BridgeProcess(server.target, runtime="in-process").start()
    yield running
    assert running.stop() == 0


@pytest.fixture
def http(bridge_app):
    return bridge_app.test_client()


CAPITAL_QUESTION = [{"role": "system", "content": "Answer in one word."},
                    {"role": "user", "content": "What is the capital of France?"}]

# SmolLM2's end-of-generation tokens (<|endoftext|>, <|im_end|>, <|im_start|>). Banning them makes
# the model write until max_tokens, for tests that need a long or exact-length generation.
BAN_END_OF_GENERATION = {0: -100.0, 2: -100.0, 4: -100.0}
