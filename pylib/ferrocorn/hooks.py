"""Gunicorn's server hooks, called with objects shaped like Gunicorn's.

The configuration file is executed again in each process (and each
interpreter) that calls hooks, so its functions run where they belong: the
arbiter's hooks in the arbiter, the worker's in the worker, ``pre_request``
and ``post_request`` in the interpreter serving the request.

What differs from Gunicorn: ``server`` and ``worker`` are plain objects with
the attributes hooks use (``pid``, ``ppid``, ``age``, ``num_workers``,
``address``, ``cfg`` with every setting by its Gunicorn name as text, ``log``
with debug/info/warning/error/critical/exception); they have no methods that
drive the server. An exception in a hook is logged with its traceback and the
server goes on.
"""

import sys
import traceback
import types

from ferrocorn import config

class Log:
    """``server.log`` / ``worker.log``: writes to ferrocorn's error log."""

    def __init__(self, write):
        self._write = write

    def _log(self, level, message, args):
        text = str(message) % args if args else str(message)
        self._write(level, text)

    def debug(self, message, *args, **_):
        self._log("debug", message, args)

    def info(self, message, *args, **_):
        self._log("info", message, args)

    def warning(self, message, *args, **_):
        self._log("warning", message, args)

    warn = warning

    def error(self, message, *args, **_):
        self._log("error", message, args)

    def critical(self, message, *args, **_):
        self._log("critical", message, args)

    def exception(self, message, *args, **_):
        self._log("error", message, args)
        self._write("error", traceback.format_exc())


class Hooks:
    """The hooks one configuration file defines, ready to call."""

    def __init__(self, source, write_log, settings):
        self.namespace = config.namespace(source)
        self.log = Log(write_log)
        self.cfg = types.SimpleNamespace(**dict(settings))

    def defines(self, name):
        return callable(self.namespace.get(name))

    def server(self, pid, num_workers, addresses):
        return types.SimpleNamespace(pid=pid, num_workers=num_workers,
                                     address=list(addresses), cfg=self.cfg, log=self.log)

    def worker(self, pid, ppid, age):
        return types.SimpleNamespace(pid=pid, ppid=ppid, age=age, alive=True,
                                     cfg=self.cfg, log=self.log)

    def call(self, name, *args):
        hook = self.namespace.get(name)
        if not callable(hook):
            return
        try:
            hook(*args)
        except Exception:
            self.log.error("Exception in %s hook:\n%s" % (name, traceback.format_exc()))


class Request:
    """``req`` for pre_request/post_request: Gunicorn's request attributes."""

    def __init__(self, method, uri, path, query, version, headers):
        self.method = method
        self.uri = uri
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers


class Response:
    """``resp`` for post_request."""

    def __init__(self, status, headers, sent):
        self.status = status
        self.status_code = int(status.split(None, 1)[0]) if status[:3].isdigit() else 500
        self.headers = headers
        self.sent = sent
        self.response_length = sent
