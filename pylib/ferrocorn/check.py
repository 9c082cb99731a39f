"""The PEP 3333 checker behind ``--check-wsgi``.

``wrap(app, report)`` returns an app that behaves exactly like ``app`` (it
fixes nothing) but calls ``report(rule, message)`` for every rule of PEP 3333
the app breaks. Where ``wsgiref.validate`` checks the same rule, the message is
the one it raises, so findings can be compared with it; checks it lacks
(hop-by-hop headers, Content-Length against the body, a second
``start_response``, ``write`` after returning, reading past CONTENT_LENGTH)
have messages of their own.
"""

import re

_HEADER_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9\-_]*$")
_BAD_HEADER_VALUE = re.compile(r"[\000-\037]")
# RFC 9110 §7.6.1; PEP 3333 forbids apps from using them.
_HOP_BY_HOP = frozenset((
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "te", "trailers", "transfer-encoding", "upgrade",
))
_NO_BODY_STATUS = (204, 304)


def wrap(app, report):
    """Returns ``app`` with every request checked; findings go to ``report``."""

    def checked_app(environ, start_response):
        request = _Request(environ, report)
        environ["wsgi.input"] = _Input(environ["wsgi.input"], request)
        environ["wsgi.errors"] = _Errors(environ["wsgi.errors"], request)
        result = app(environ, request.start_response_for(start_response))
        return request.returned(result)

    return checked_app


class _Request:
    """What one request has done so far, and the checks on each step."""

    def __init__(self, environ, report):
        self.report = report
        self.method = environ.get("REQUEST_METHOD", "GET")
        self.started = False
        self.app_returned = False
        self.declared_length = None
        self.body_bytes = 0
        try:
            self.content_length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            self.content_length = 0
        self.input_read = 0
        self.read_past_end_reported = False

    def start_response_for(self, start_response):
        def checked_start_response(*args, **kw):
            self.check_start_response(args, kw)
            write = start_response(*args, **kw)
            return _Write(write, self)

        return checked_start_response

    def check_start_response(self, args, kw):
        report = self.report
        if len(args) not in (2, 3):
            report("start_response", "Invalid number of arguments: %s" % (args,))
            return
        if kw:
            report("start_response", "No keyword arguments allowed")
        status, headers = args[0], args[1]
        exc_info = args[2] if len(args) == 3 else None
        if self.started and exc_info is None:
            report("start_response",
                   "start_response() called a second time without exc_info")
        code = _check_status(status, report)
        names = _check_headers(headers, report)
        if code is not None and names is not None:
            has_type = "content-type" in names
            if has_type and code in _NO_BODY_STATUS:
                report("content-type",
                       "Content-Type header found in a %s response, "
                       "which must not return content." % code)
            elif not has_type and code not in _NO_BODY_STATUS:
                report("content-type",
                       "No Content-Type header found in headers (%s)" % headers)
        if exc_info is not None and type(exc_info) is not tuple:
            report("exc_info", "exc_info (%r) is not a tuple: %r"
                   % (exc_info, type(exc_info)))
        if names is not None and "content-length" in names:
            value = names["content-length"]
            if value.isdigit():
                self.declared_length = int(value)
            else:
                report("content-length", "Content-Length is not a number: %r" % value)
        self.started = True

    def returned(self, result):
        report = self.report
        self.app_returned = True
        if result is None or result is False:
            report("result",
                   "The application must return an iterator, if only an empty list")
            return result
        if isinstance(result, (str, bytes)):
            report("result",
                   "You should not return a string as your application iterator, "
                   "instead return a single-item list containing a bytestring.")
            return result
        if type(result) in (list, tuple):
            # Checked whole, and handed on as it is: the server sends a list
            # with a Content-Length, which a wrapper would hide from it.
            for item in result:
                if not self.iterated(item):
                    break
            self.body_ended()
            return result
        try:
            iterator = iter(result)
        except TypeError:
            report("result", "The application must return an iterable, not %s"
                   % type(result).__name__)
            return result
        return _Body(result, iterator, self)

    def iterated(self, item):
        """Checks one body item; False if it is not bytes."""
        if type(item) is not bytes:
            self.report("iteration", "Iterator yielded non-bytestring (%r)" % (item,))
            return False
        if not self.started:
            self.report("iteration",
                        "The application returns and we started iterating over its "
                        "body, but start_response has not yet been called")
            self.started = True
        self.body_bytes += len(item)
        return True

    def body_ended(self):
        declared = self.declared_length
        if declared is not None and self.method != "HEAD" and self.body_bytes != declared:
            self.report("content-length",
                        "Content-Length is %d but the application produced %d body bytes"
                        % (declared, self.body_bytes))

    def wrote(self, data):
        if type(data) is not bytes:
            self.report("write", "write() argument must be of type bytes (got %r)" % (data,))
            return
        if self.app_returned:
            self.report("write",
                        "write() called after the application returned its iterable")
        self.body_bytes += len(data)

    def before_read(self, size):
        """A read of ``size`` bytes (negative: all) is about to happen."""
        nothing_left = self.input_read >= self.content_length
        if size != 0 and nothing_left and not self.read_past_end_reported:
            self.read_past_end_reported = True
            self.report("input",
                        "wsgi.input read past CONTENT_LENGTH (%d bytes)" % self.content_length)


def _check_status(status, report):
    """The status code, or None when the status is unusable."""
    if type(status) is not str:
        report("status", "Status must be of type str (got %r)" % (status,))
        return None
    parts = status.split(None, 1)
    status_code = parts[0] if parts else ""
    if len(status_code) != 3:
        report("status", "Status codes must be three characters: %r" % status_code)
        return None
    if not status_code.isdigit():
        report("status", "Status code is not a number: %r" % status_code)
        return None
    code = int(status_code)
    if code < 100:
        report("status", "Status code is invalid: %r" % code)
        return None
    if len(status) < 4 or status[3] != " ":
        report("status",
               "The status string (%r) should be a three-digit integer "
               "followed by a single space and a status explanation" % status)
    return code


def _check_headers(headers, report):
    """Lower-cased names mapped to values, or None when unusable."""
    if type(headers) is not list:
        report("headers", "Headers (%r) must be of type list: %r"
               % (headers, type(headers)))
        return None
    names = {}
    for item in headers:
        if type(item) is not tuple:
            report("headers", "Individual headers (%r) must be of type tuple: %r"
                   % (item, type(item)))
            continue
        if len(item) != 2:
            report("headers", "Individual headers (%r) must be (name, value) pairs" % (item,))
            continue
        name, value = item
        if type(name) is not str:
            report("headers", "Header name must be of type str (got %r)" % (name,))
            continue
        if type(value) is not str:
            report("headers", "Header value must be of type str (got %r)" % (value,))
            continue
        lower = name.lower()
        if lower == "status":
            report("headers",
                   "The Status header cannot be used; it conflicts with CGI "
                   "script, and HTTP status is not given through headers "
                   "(value: %r)." % value)
        elif "\n" in name or ":" in name:
            report("headers", "Header names may not contain ':' or '\\n': %r" % name)
        elif not _HEADER_NAME.search(name):
            report("headers", "Bad header name: %r" % name)
        elif name.endswith("-") or name.endswith("_"):
            report("headers", "Names may not end in '-' or '_': %r" % name)
        elif _BAD_HEADER_VALUE.search(value):
            report("headers", "Bad header value: %r (bad char: %r)"
                   % (value, _BAD_HEADER_VALUE.search(value).group(0)))
        elif lower in _HOP_BY_HOP:
            report("hop-by-hop", "Hop-by-hop header not allowed: %r" % name)
        elif any(ord(ch) > 255 for ch in value):
            report("headers", "Header value %r is not latin-1 (PEP 3333 native strings)"
                   % value)
        names.setdefault(lower, value)
    return names


class _Body:
    """The app's iterable, checked as the server iterates and closes it."""

    def __init__(self, original, iterator, request):
        self.original = original
        self.iterator = iterator
        self.request = request
        self.closed = False
        self.exhausted = False

    def __iter__(self):
        return self

    def __next__(self):
        if self.closed:
            self.request.report("iteration", "Iterator read after closed")
        try:
            item = next(self.iterator)
        except StopIteration:
            self.exhausted = True
            raise
        self.request.iterated(item)
        return item

    def close(self):
        self.closed = True
        try:
            if hasattr(self.original, "close"):
                self.original.close()
        finally:
            declared = self.request.declared_length
            # The server stops early at the declared length or when the
            # client leaves; only a body that ended short or ran over counts.
            if self.exhausted or (declared is not None and self.request.body_bytes > declared):
                self.request.body_ended()


class _Write:
    """The ``write`` callable, checked."""

    def __init__(self, write, request):
        self.write = write
        self.request = request

    def __call__(self, data):
        self.request.wrote(data)
        return self.write(data)


def _size(args):
    """The size a read asks for: its argument, or -1 (everything)."""
    if args and isinstance(args[0], int):
        return args[0]
    return -1


class _Input:
    """``wsgi.input``, checked (PEP 3333 "Input and Error Streams")."""

    def __init__(self, stream, request):
        self.stream = stream
        self.request = request

    def read(self, *args):
        if len(args) != 1:
            self.request.report("input",
                                "input.read() takes exactly one argument, the size (got %d)"
                                % len(args))
        self.request.before_read(_size(args))
        data = self.stream.read(*args)
        self.request.input_read += len(data)
        return data

    def readline(self, *args):
        if len(args) > 1:
            self.request.report("input", "input.readline() takes at most one argument")
        self.request.before_read(_size(args))
        data = self.stream.readline(*args)
        self.request.input_read += len(data)
        return data

    def readlines(self, *args):
        if len(args) > 1:
            self.request.report("input", "input.readlines() takes at most one argument")
        self.request.before_read(-1)
        lines = self.stream.readlines(*args)
        self.request.input_read += sum(len(line) for line in lines)
        return lines

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def close(self):
        self.request.report("input", "input.close() must not be called")


class _Errors:
    """``wsgi.errors``, checked."""

    def __init__(self, stream, request):
        self.stream = stream
        self.request = request

    def write(self, text):
        if type(text) is not str:
            self.request.report("errors",
                                "errors.write() argument must be of type str (got %r)"
                                % (text,))
        return self.stream.write(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        return self.stream.flush()

    def close(self):
        self.request.report("errors", "errors.close() must not be called")
