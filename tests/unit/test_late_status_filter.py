"""grpc logs an ERROR with a traceback when it cannot send the final status of a call whose client
cancelled just after its last message; that is an ordinary cancel, so the server demotes it. A
failed batch that carried a message stays an ERROR: there, something did not reach the client."""

from __future__ import annotations

import logging
import sys

import pytest
from grpc._cython import cygrpc

from server.monitoring.interceptor import GRPC_CORE_LOGGER, LateStatusFilter


def grpc_record(*operations) -> logging.LogRecord:
    ops = ", ".join(f"<grpc._cython.cygrpc.{op} object at 0x7f1ab4d858a0>" for op in operations)
    try:
        raise cygrpc.ExecuteBatchError(f'Failed "execute_batch": ({ops},)')
    except cygrpc.ExecuteBatchError:
        exc_info = sys.exc_info()
    return logging.LogRecord(GRPC_CORE_LOGGER, logging.ERROR, "server.pyx.pxi", 710,
                             "ExecuteBatchError raised in core by servicer method [%s]",
                             ("/tokenwire.v1.SessionService/Chat",), exc_info)


@pytest.mark.parametrize("operations", [
    ("SendStatusFromServerOperation",),
    ("SendInitialMetadataOperation", "SendStatusFromServerOperation"),
])
def test_a_status_that_could_not_be_sent_is_not_an_error(operations):
    record = grpc_record(*operations)
    LateStatusFilter().filter(record)
    assert record.levelno == logging.DEBUG and record.exc_info is None
    assert "the client had gone" in record.getMessage()


def test_a_failed_message_send_stays_an_error():
    record = grpc_record("SendMessageOperation", "SendStatusFromServerOperation")
    assert LateStatusFilter().filter(record)
    assert record.levelno == logging.ERROR and record.exc_info is not None


def test_other_errors_pass_untouched():
    record = logging.LogRecord(GRPC_CORE_LOGGER, logging.ERROR, "x", 1, "boom", (), None)
    assert LateStatusFilter().filter(record) and record.levelno == logging.ERROR
