"""The Python side of examples/embed.rs: a WSGI app that asks its Rust host
for data through the native module ``host`` (it exists only inside the host)."""

import json

import host


def application(environ, start_response):
    name = environ["PATH_INFO"].strip("/") or "ferrocorn"
    try:
        answer = {"name": name, "stock": host.stock(name), "host": host.NAME}
        status = "200 OK"
    except KeyError:
        answer = {"error": "no such item: " + name}
        status = "404 Not Found"
    body = json.dumps(answer).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]
