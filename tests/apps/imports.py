"""Which modules were imported before this app, and whether one can be.

GET /        the names in sys.modules when this module was imported, one per line
GET /NAME    "imported NAME", or "refused: <the ImportError>"
"""

import sys

BEFORE = sorted(name for name in sys.modules if name != __name__)


def application(environ, start_response):
    name = environ["PATH_INFO"].strip("/")
    if not name:
        body = "\n".join(BEFORE)
    else:
        try:
            __import__(name)
            body = "imported " + name
        except ImportError as error:
            body = "refused: %s" % error
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
