"""Kills its own process while being imported (tests/arbiter.rs: a worker
that dies before it boots, in a way that is no boot error)."""

import os
import signal

os.kill(os.getpid(), signal.SIGKILL)


def application(environ, start_response):
    start_response("200 OK", [])
    return [b"unreachable"]
