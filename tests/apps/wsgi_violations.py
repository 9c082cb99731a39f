"""Apps that each break one rule of PEP 3333, for comparing ferrocorn's
``--check-wsgi`` findings with ``wsgiref.validate``'s (tests/wsgi_check.rs).
``good`` breaks none."""

import sys

TEXT = [("Content-Type", "text/plain")]


def good(environ, start_response):
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    environ["wsgi.errors"].write("a line for the log\n")
    start_response("200 OK", TEXT + [("Content-Length", str(len(body) + 2))])
    return [b"ok", body]


def status_not_str(environ, start_response):
    start_response(200, TEXT)
    return [b"x"]


def status_two_digits(environ, start_response):
    start_response("20 OK", TEXT)
    return [b"x"]


def status_below_100(environ, start_response):
    start_response("099 Odd", TEXT)
    return [b"x"]


def status_without_reason(environ, start_response):
    start_response("200", TEXT)
    return [b"x"]


def headers_not_list(environ, start_response):
    start_response("200 OK", tuple(TEXT))
    return [b"x"]


def header_not_tuple(environ, start_response):
    start_response("200 OK", [["Content-Type", "text/plain"]])
    return [b"x"]


def header_name_not_str(environ, start_response):
    start_response("200 OK", TEXT + [(b"X-Bytes", "v")])
    return [b"x"]


def header_value_not_str(environ, start_response):
    start_response("200 OK", TEXT + [("X-Number", 5)])
    return [b"x"]


def status_header(environ, start_response):
    start_response("200 OK", TEXT + [("Status", "200 OK")])
    return [b"x"]


def header_name_with_colon(environ, start_response):
    start_response("200 OK", TEXT + [("X-Bad:Name", "v")])
    return [b"x"]


def header_name_with_space(environ, start_response):
    start_response("200 OK", TEXT + [("X Bad", "v")])
    return [b"x"]


def header_name_ends_with_dash(environ, start_response):
    start_response("200 OK", TEXT + [("X-Trailing-", "v")])
    return [b"x"]


def header_value_with_control(environ, start_response):
    start_response("200 OK", TEXT + [("X-Value", "a\x01b")])
    return [b"x"]


def no_content_type(environ, start_response):
    start_response("200 OK", [("Content-Length", "1")])
    return [b"x"]


def content_type_on_204(environ, start_response):
    start_response("204 No Content", TEXT)
    return []


def exc_info_not_tuple(environ, start_response):
    start_response("200 OK", TEXT, ["not", "a", "tuple"])
    return [b"x"]


def returns_none(environ, start_response):
    start_response("200 OK", TEXT)
    return None


def returns_bytes(environ, start_response):
    start_response("200 OK", TEXT)
    return b"not a list"


def yields_str(environ, start_response):
    start_response("200 OK", TEXT)
    return ["text, not bytes"]


def body_before_start_response(environ, start_response):
    return [b"x"]


def closes_input(environ, start_response):
    environ["wsgi.input"].close()
    start_response("200 OK", TEXT)
    return [b"x"]


def closes_errors(environ, start_response):
    environ["wsgi.errors"].close()
    start_response("200 OK", TEXT)
    return [b"x"]


# Rules wsgiref.validate does not check.

def hop_by_hop_header(environ, start_response):
    start_response("200 OK", TEXT + [("Connection", "close")])
    return [b"x"]


def content_length_too_long(environ, start_response):
    start_response("200 OK", TEXT + [("Content-Length", "10")])
    return iter([b"short"])


def start_response_twice(environ, start_response):
    start_response("200 OK", TEXT)
    try:
        start_response("201 Created", TEXT)
    except AssertionError:
        pass
    return [b"x"]


def write_after_return(environ, start_response):
    write = start_response("200 OK", TEXT)

    def body():
        yield b"first "
        write(b"late")

    return body()


def reads_past_content_length(environ, start_response):
    stream = environ["wsgi.input"]
    chunks = []
    while True:
        chunk = stream.read(4096)
        if not chunk:
            break
        chunks.append(chunk)
    start_response("200 OK", TEXT)
    return chunks


CASES = [name for name, value in list(globals().items())
         if callable(value) and not name.startswith("_") and name != "good"]
