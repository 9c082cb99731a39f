"""WSGI app for ferrocorn's integration tests: one route per behaviour.

Routes that record something (close() calls, app calls) append a line to the
file named by the PROBE_LOG environment variable.
"""

import json
import os
import sys
import time


def record(line):
    path = os.environ.get("PROBE_LOG")
    if path:
        with open(path, "a") as log:
            log.write(line + "\n")


def text(start_response, body, status="200 OK", extra=()):
    data = body.encode("utf-8")
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))] + list(extra))
    return [data]


class IterRaises:
    def __iter__(self):
        raise ValueError("__iter__ failed on purpose")


class Recorded:
    """An iterable whose close() is logged, optionally failing part way."""

    def __init__(self, name, chunks, fail_after=None):
        self.name, self.chunks, self.fail_after = name, chunks, fail_after

    def __iter__(self):
        for index, chunk in enumerate(self.chunks):
            if self.fail_after is not None and index == self.fail_after:
                raise RuntimeError("failed while iterating")
            yield chunk

    def close(self):
        record("closed " + self.name)


def environ_json(environ, start_response):
    keys = {k: v for k, v in environ.items() if isinstance(v, (str, bool, int, tuple))}
    keys["wsgi.input.type"] = type(environ["wsgi.input"]).__name__
    keys["wsgi.errors.type"] = type(environ["wsgi.errors"]).__name__
    keys["has_file_wrapper"] = callable(environ.get("wsgi.file_wrapper"))
    return text(start_response, json.dumps(keys, sort_keys=True))


def input_api(environ, start_response):
    stream = environ["wsgi.input"]
    mode = environ["QUERY_STRING"]
    if mode == "lines":
        result = [line.decode("latin-1") for line in stream.readlines()]
    elif mode == "iter":
        result = [line.decode("latin-1") for line in stream]
    elif mode == "readline":
        result = [stream.readline().decode("latin-1"), stream.readline(2).decode("latin-1"), stream.read().decode("latin-1")]
    elif mode == "sized":
        result = [stream.read(3).decode("latin-1"), stream.read(-1).decode("latin-1"), stream.read().decode("latin-1")]
    else:
        data = stream.read()
        result = {"length": len(data), "sum": sum(data) % 1000003, "content_length": environ.get("CONTENT_LENGTH")}
    return text(start_response, json.dumps(result))


def stream_until_file(environ, start_response):
    """Yields one chunk, then waits (bounded) for the client to create a file."""
    flag = environ["QUERY_STRING"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"first chunk\n"
    deadline = time.time() + 10
    while not os.path.exists(flag) and time.time() < deadline:
        time.sleep(0.01)
    yield b"second chunk\n" if os.path.exists(flag) else b"timed out\n"


def application(environ, start_response):
    path = environ["PATH_INFO"]
    record("call " + path)
    if path.startswith("/environ"):
        return environ_json(environ, start_response)
    if path == "/key":
        name = environ["QUERY_STRING"]
        return text(start_response, str(environ[name]) if name in environ else "(absent)")
    if path == "/input":
        return input_api(environ, start_response)
    if path == "/generator":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (part for part in [b"one ", b"", b"two ", b"three"])
    if path == "/empty-generator":
        start_response("204 No Content", [])
        return iter([])
    if path == "/stream-until-file":
        return stream_until_file(environ, start_response)
    if path == "/sleep":
        time.sleep(float(environ["QUERY_STRING"] or "1"))
        return text(start_response, "slept")
    if path == "/sleep-marked":
        # ?SECONDS&PATH: writes PATH once the app has the request, so a test
        # knows it is in flight, then sleeps.
        seconds, marker = environ["QUERY_STRING"].split("&", 1)
        with open(marker, "w") as started:
            started.write("started")
        time.sleep(float(seconds))
        return text(start_response, "slept")
    if path == "/sleep-counted":
        # ?SECONDS&PATH: appends a line to PATH each time the app runs it.
        seconds, counter = environ["QUERY_STRING"].split("&", 1)
        with open(counter, "a") as ran:
            ran.write("ran\n")
        time.sleep(float(seconds))
        return text(start_response, "slept")
    if path == "/too-long":
        start_response("200 OK", [("Content-Length", "5")])
        return [b"0123456789"]
    if path == "/endless":
        start_response("200 OK", [("Content-Length", "5")])
        return Recorded("endless", iter(lambda: b"abc", None))
    if path == "/too-short":
        start_response("200 OK", [("Content-Length", "10")])
        return [b"01234"]
    if path == "/raise":
        raise ValueError("the app failed on purpose")
    if path == "/raise-late":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Recorded("raise-late", [b"partial ", b"never"], fail_after=1)
    if path == "/closing":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Recorded("closing", [b"a", b"b"])
    if path == "/slow-closing":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Recorded("slow-closing", [b"x" * 65536 for _ in range(400)])
    if path == "/hop-by-hop":
        start_response("200 OK", [("Connection", "close")])
        return [b"no"]
    if path == "/injection":
        start_response("200 OK", [("X-Evil", "a\r\nSet-Cookie: owned=1")])
        return [b"no"]
    if path == "/bad-status":
        start_response("OK", [])
        return [b"no"]
    if path == "/str-body":
        start_response("200 OK", [])
        return ["not bytes"]
    if path == "/no-start-response":
        return [b"body without start_response"]
    if path == "/not-iterable":
        start_response("200 OK", [])
        return 42
    if path == "/iter-raises":
        start_response("200 OK", [])
        return IterRaises()
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"returned"]
    if path == "/exc-info":
        try:
            raise KeyError("first attempt")
        except KeyError:
            start_response("200 OK", [("X-Replaced", "no")])
            start_response("503 Service Unavailable", [("X-Replaced", "yes")], sys.exc_info())
        return [b"replaced"]
    if path == "/exc-info-after-head":
        write = start_response("200 OK", [])
        write(b"head sent")
        try:
            raise KeyError("too late")
        except KeyError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        return [b"unreachable"]
    if path == "/twice":
        start_response("200 OK", [])
        start_response("200 OK", [])
        return [b"no"]
    if path == "/file-wrapper":
        import io
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"wrapped file body"), 4)
    if path == "/print":
        print("printed by the app")
        return text(start_response, "printed")
    if path == "/os-environ":
        return text(start_response, os.environ.get(environ["QUERY_STRING"], "<unset>"))
    if path == "/pid":
        return text(start_response, str(os.getpid()))
    if path == "/pid-after":
        # ?SECONDS: an app that takes a little while, answering which worker.
        time.sleep(float(environ["QUERY_STRING"]))
        return text(start_response, str(os.getpid()))
    if path == "/errors":
        environ["wsgi.errors"].write("message for the error log\n")
        environ["wsgi.errors"].flush()
        return text(start_response, "logged")
    if path == "/big":
        size = int(environ["QUERY_STRING"] or "1048576")
        start_response("200 OK", [("Content-Length", str(size))])
        return [b"x" * size]
    return text(start_response, "not found: " + path, "404 Not Found")
