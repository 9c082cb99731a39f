"""WSGI app for tests/preload.rs: it says which process imported it and
which one answers, so a test can tell a forked worker from one that
imported the app itself.

    /          pid=WORKER loaded_by=IMPORTER version=VERSION
    /write     "returned" (the load clients of tests/common/load.rs)
    /fork      what os.fork() did: "forked" or the exception's name
    /sleep     sleeps 30 s (a stuck request)
"""

import os
import time

LOADED_BY = os.getpid()
VERSION = 1


def text(start_response, body):
    data = body.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/write":
        return text(start_response, "returned")
    if path == "/fork":
        try:
            child = os.fork()
        except OSError as error:
            return text(start_response, type(error).__name__)
        if child == 0:
            os._exit(0)
        os.waitpid(child, 0)
        return text(start_response, "forked")
    if path == "/sleep":
        time.sleep(30)
    return text(start_response, "pid=%d loaded_by=%d version=%s" % (os.getpid(), LOADED_BY, VERSION))
