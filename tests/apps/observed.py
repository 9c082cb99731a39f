"""WSGI app for the observability tests (tests/observability.rs).

/            200 "ok"
/missing     404
/boom        raises (500, logged with its traceback)
/hold?PATH   waits (at most 20 s) until the file PATH exists, then 200
/pid         the worker's process id
/grow        keeps 64 MB more in memory (for --max-worker-memory)
/orphan      starts a background `sleep` whose parent exits at once, so the
             sleep is re-parented to the nearest reaper (PID 1 in a
             namespace); answers with nothing
Import takes as many seconds as the file named by IMPORT_DELAY_FILE says,
when it exists (to watch readiness while new workers boot).
"""

import os
import time

_delay_file = os.environ.get("IMPORT_DELAY_FILE")
if _delay_file and os.path.exists(_delay_file):
    with open(_delay_file) as f:
        time.sleep(float(f.read().strip() or "0"))


_kept = []


def _text(start_response, body, status="200 OK"):
    data = body.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/missing":
        return _text(start_response, "no such thing", "404 Not Found")
    if path == "/boom":
        raise RuntimeError("boom, on purpose")
    if path == "/hold":
        wanted = environ.get("QUERY_STRING", "")
        deadline = time.monotonic() + 20
        while not os.path.exists(wanted) and time.monotonic() < deadline:
            time.sleep(0.01)
        return _text(start_response, "released")
    if path == "/pid":
        return _text(start_response, str(os.getpid()))
    if path == "/grow":
        _kept.append(b"x" * (64 << 20))
        return _text(start_response, "grown")
    if path == "/orphan":
        os.system("sleep 1 &")
        return _text(start_response, "")
    return _text(start_response, "ok")
