"""API keys for the security tests, all containing one random sentinel. The suite's log records and
the output of the server processes it starts are checked for the sentinel at the end of the
session (conftest.no_key_in_logs): a key that reached a log fails the run."""

import secrets

SENTINEL = "tw-sentinel-" + secrets.token_hex(8)
USER_KEY = SENTINEL + "-user"
ADMIN_KEY = SENTINEL + "-admin"
WRONG_KEY = SENTINEL + "-wrong"
KEY_A = SENTINEL + "-client-a"
KEY_B = SENTINEL + "-client-b"
BRIDGE_SECRET = SENTINEL + "-bridge"

# Output of subprocesses the tests started (tokenwire serve / bridge), checked with the log records.
captured_output: list[str] = []
