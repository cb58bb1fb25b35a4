"""The server's log buffer and the log levels it raises for it are the process's logging
configuration: a server that fails to start, or that stops, leaves them as it found them, for the
application that embeds it or the next server started in the same process."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from server.app import create_server
from server.monitoring.logbuffer import ACCESS_LOGGER
from tests.helpers import ServerThread, make_settings

SERVER_LOGGERS = (ACCESS_LOGGER, "server", "tokenwire")


@pytest.fixture
def console_at_warning():
    """The root logger at WARNING (`--log-level warning`) and the server's loggers following it:
    the server then raises its own loggers to INFO so that its log buffer still gets their
    records."""
    root, loggers = logging.getLogger(), [logging.getLogger(name) for name in SERVER_LOGGERS]
    previous = root.level, [logger.level for logger in loggers]
    root.setLevel(logging.WARNING)
    for logger in loggers:
        logger.setLevel(logging.NOTSET)
    yield
    root.setLevel(previous[0])
    for logger, level in zip(loggers, previous[1]):
        logger.setLevel(level)


def _logging_state() -> tuple[list[logging.Handler], dict[str, int]]:
    return logging.getLogger().handlers[:], {name: logging.getLogger(name).level
                                             for name in SERVER_LOGGERS}


def test_a_server_whose_session_store_cannot_be_opened_leaves_logging_as_it_found_it(
        console_at_warning, tmp_path):
    not_a_directory = tmp_path / "sessions"
    not_a_directory.write_text("a file where the store's directory should be")
    settings = make_settings(sessions={"store_path": str(not_a_directory / "sessions.db")})
    before = _logging_state()
    with pytest.raises(OSError, match="cannot open the session store"):
        asyncio.run(create_server(settings))
    assert _logging_state() == before


def test_a_server_whose_port_is_taken_leaves_logging_as_it_found_it(console_at_warning):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        settings = make_settings(server={"grpc_port": taken.getsockname()[1]})
        before = _logging_state()
        with pytest.raises(OSError, match="cannot listen"):
            asyncio.run(create_server(settings))
    assert _logging_state() == before


def test_a_server_that_starts_and_stops_leaves_logging_as_it_found_it(console_at_warning):
    before = _logging_state()
    running = ServerThread(make_settings()).start()
    try:
        handlers, levels = _logging_state()
        assert len(handlers) == len(before[0]) + 1  # its log buffer, while it runs
        assert set(levels.values()) == {logging.INFO}
    finally:
        running.stop()
    assert _logging_state() == before


def test_two_servers_in_one_process_keep_the_levels_raised_until_the_last_one_stops(
        console_at_warning):
    before = _logging_state()
    first = ServerThread(make_settings()).start()
    second = None
    try:
        second = ServerThread(make_settings()).start()
        first.stop()
        first = None
        assert set(_logging_state()[1].values()) == {logging.INFO}  # the second one's buffer
    finally:
        for running in (first, second):
            if running is not None:
                running.stop()
    assert _logging_state() == before
