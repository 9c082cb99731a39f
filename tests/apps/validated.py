"""An app wrapped in wsgiref.validate.validator: any PEP 3333 violation by the
server (or the app) raises AssertionError or warns WSGIWarning."""

import warnings
from wsgiref.validate import validator

warnings.simplefilter("always")


def app(environ, start_response):
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    text = ("validated %s %s" % (environ["REQUEST_METHOD"], body.decode())).strip()
    data = text.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]


application = validator(app)
