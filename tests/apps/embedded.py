"""App for tests/embed_api.rs: uses the native module ``host`` the Rust test
registers, and tells it (through ``host.note``) what happened."""

import host


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/echo":
        # Every Value kind there and back.
        result = host.echo(None, True, -7, 2.5, "text é", b"\x00\xff", [1, "two"], {"k": [3]})
        body = repr(result).encode()
    elif path == "/denied":
        try:
            host.secret()
            body = b"allowed"
        except PermissionError as error:
            body = ("PermissionError: %s" % error).encode()
    elif path == "/bad-argument":
        try:
            host.echo(object())
            body = b"accepted"
        except TypeError as error:
            body = ("TypeError: %s" % error).encode()
    elif path == "/endless":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return endless()
    else:
        body = ("%s from %s" % (host.GREETING, path)).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


def endless():
    count = 0
    try:
        while True:
            count += 1
            yield b"x" * 1024
    finally:
        host.note("closed after %d blocks" % count)
