"""Reads the file named by $SECRET_PATH when imported (tests/sandbox.rs)."""

import os

with open(os.environ["SECRET_PATH"]) as f:
    CONTENT = f.read()


def application(environ, start_response):
    body = CONTENT.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
