"""Apps the benchmark serves with every server (pure Python, WSGI)."""

import json

HELLO = b"Hello, world!\n"
BIG = b"x" * (1 << 20)


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))])
    return [HELLO]


def big(environ, start_response):
    """GET: a 1 MB response. POST: reads the whole body, answers its length."""
    if environ["REQUEST_METHOD"] == "POST":
        stream, remaining, total = environ["wsgi.input"], int(environ.get("CONTENT_LENGTH") or 0), 0
        while remaining > 0:
            chunk = stream.read(min(remaining, 65536))
            if not chunk:
                break
            total += len(chunk)
            remaining -= len(chunk)
        body = json.dumps({"received": total}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(BIG)))])
    return [BIG]
