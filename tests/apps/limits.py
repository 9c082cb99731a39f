"""Requests that run too long or take too much memory (tests/limits.rs)."""

import os
import sys

_kept = []


def _say(text):
    print(text, flush=True)


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/spin":
        _say("spinning")
        while True:
            pass
    if path == "/swallow":
        _say("swallowing")
        while True:
            try:
                while True:
                    pass
            except BaseException:
                _say("swallowed an interrupt")
    if path == "/cleanup":
        # The interrupt runs the app's finally blocks.
        try:
            while True:
                pass
        finally:
            _say("cleaned up after the interrupt")
    if path == "/grow":
        # Touched pages: resident, not only reserved.
        _kept.append(b"x" * (32 << 20))
    if path == "/balloon":
        if environ.get("QUERY_STRING") == "raise-limit-first":
            import resource

            try:
                resource.setrlimit(resource.RLIMIT_DATA, (resource.RLIM_INFINITY,) * 2)
                _say("raised the data limit")
            except (ValueError, OSError) as error:
                _say("could not raise the data limit: %s" % error)
        chunks = []
        while True:
            chunks.append(bytearray(8 << 20))
    body = ("pid %d\n" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
