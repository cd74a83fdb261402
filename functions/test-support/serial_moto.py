"""moto's server (as `moto_server -H HOST -p PORT` runs it) with one request at a time.

`moto_server` handles requests on several threads without locking its DynamoDB backend,
so two concurrent conditional writes or transactions can both pass their conditions.
DynamoDB serializes them; serializing the requests here gives the tests the same
guarantee.

Usage: python3 serial_moto.py HOST PORT
"""

import os
import signal
import sys
from threading import Lock

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    lock = Lock()

    def serial(environ, start_response):
        with lock:
            # The whole response is built under the lock: the backend's work is done.
            return list(app(environ, start_response))

    run_simple(host, port, serial, threaded=True)


if __name__ == "__main__":
    main()
