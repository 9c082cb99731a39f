"""Run by CPython in tests/wsgi_check.rs: each app of wsgi_violations.py
through wsgiref.validate, printing {case: the first finding or null} as JSON."""

import io
import json
import sys
import warnings
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator, WSGIWarning

import wsgi_violations

warnings.simplefilter("error", WSGIWarning)


def first_finding(app):
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "",
               "SCRIPT_NAME": "",
               "wsgi.input": io.BytesIO(b"")}
    setup_testing_defaults(environ)

    def start_response(status, headers, exc_info=None):
        return lambda data: None

    result = None
    try:
        result = validator(app)(environ, start_response)
        for _ in result:
            pass
        result.close()
        return None
    except (AssertionError, WSGIWarning) as finding:
        return str(finding)
    finally:
        # The validator's iterator complains when collected unclosed.
        if result is not None and hasattr(result, "closed"):
            result.closed = True


findings = {name: first_finding(getattr(wsgi_violations, name))
            for name in wsgi_violations.CASES + ["good"]}
json.dump(findings, sys.stdout)
