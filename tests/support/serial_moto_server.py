"""moto's DynamoDB-compatible server, as `moto_server -H HOST -p PORT` runs it, but
answering one request at a time.

`moto_server` serves requests on several threads and does not lock its DynamoDB backend:
two concurrent conditional writes or transactions can both pass their conditions, and a
cancelled transaction restores a copy of the table taken before it started, erasing what
others committed meanwhile. DynamoDB itself serializes them, so the tests need the same.

Usage: python3 serial_moto_server.py HOST PORT
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
            # The whole body is produced under the lock, so the backend's work is done.
            return list(app(environ, start_response))

    run_simple(host, port, serial, threaded=True)


if __name__ == "__main__":
    main()
