"""The corpus's HTTPS endpoint, served by ferrocorn over TLS with a
certificate from the corpus's own CA: it answers every request with what it
received, as JSON, so a client test can check its request arrived whole."""

import json


def application(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    status = "200 OK"
    if environ["PATH_INFO"].startswith("/status/"):
        code = int(environ["PATH_INFO"].rsplit("/", 1)[1])
        status = "%d Status" % code
    answer = {
        "method": environ["REQUEST_METHOD"],
        "path": environ["PATH_INFO"],
        "query": environ["QUERY_STRING"],
        "body": body.decode("latin-1"),
        "headers": {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")},
        "content_type": environ.get("CONTENT_TYPE", ""),
    }
    payload = json.dumps(answer).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]
