"""gunicorn settings for the bridge when a tokenwire process starts it (rest_bridge.serve).

The bridge must not outlive the process that started it: a crashed server would otherwise leave
an orphaned bridge holding the REST port. The master watches its parent and stops gracefully when
it is gone. (A pre-exec hook in the parent would need a real fork() of a process already running
gRPC threads, which gRPC does not survive reliably.)
"""

import os
import signal
import threading
import time

PARENT_PID_ENV = "TOKENWIRE_BRIDGE_PARENT_PID"
CHECK_INTERVAL_S = 1.0


def when_ready(server) -> None:
    parent = int(os.environ.get(PARENT_PID_ENV, "0"))
    if not parent:
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(CHECK_INTERVAL_S)
        server.log.warning("tokenwire process %s is gone; stopping the bridge", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
