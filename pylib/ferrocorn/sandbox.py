"""The interpreter's side of ``--sandbox`` and ``--deny-module``.

The kernel enforces the policy (Landlock, seccomp: see README "Sandbox");
nothing here is a boundary, since code in this interpreter can undo any of
it. What it adds: refusals that name the setting to change, the host part of
``--allow-connect`` (Landlock knows ports only), answers to name lookups
from the table resolved at start-up (the resolver's files and UDP are closed),
and the environment cut to ``--allow-env`` where the process keeps its own
(library use).
"""

import builtins
import errno
import io
import json
import os
import sys

PREFIX = "ferrocorn sandbox: "


class _DeniedModules:
    """A meta path finder placed first: a denied name (or a submodule of
    one) is refused before any other finder looks for it."""

    def __init__(self, reasons):
        self.reasons = dict(reasons)

    def _reason(self, name):
        for denied, reason in self.reasons.items():
            if name == denied or name.startswith(denied + "."):
                return denied, reason
        return None

    def find_spec(self, name, path=None, target=None):
        found = self._reason(name)
        if found is not None:
            denied, reason = found
            raise ImportError(
                "%simporting %s is not allowed (%s)" % (PREFIX, denied, reason),
                name=name,
            )
        return None


def deny_modules(reasons):
    """Refuse importing each name of ``reasons`` ({name: the setting})."""
    for name in list(sys.modules):
        for denied in reasons:
            if name == denied or name.startswith(denied + "."):
                del sys.modules[name]
    sys.meta_path.insert(0, _DeniedModules(reasons))


def _below(path, roots):
    try:
        path = os.path.abspath(os.fsdecode(path))
    except (TypeError, ValueError):
        return False
    for root in roots:
        root = os.path.abspath(root)
        if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
            return True
    return False


def _explain_open(error, file, mode, settings):
    """A PermissionError from the kernel, with the setting that opens the path."""
    if not isinstance(file, (str, bytes, os.PathLike)):
        return error
    writing = any(flag in str(mode) for flag in "wax+")
    if writing and not _below(file, settings["writable"]):
        hint = "not writable (--allow-write)"
    elif not writing and not _below(file, settings["readable"] + settings["writable"]):
        hint = "outside what the app may read (--allow-read)"
    else:
        return error
    return PermissionError(error.errno, "%s%s is %s" % (PREFIX, os.fsdecode(file), hint), file)


def _wrap_open(settings):
    original = builtins.open

    def open(file, mode="r", *args, **kwargs):
        try:
            return original(file, mode, *args, **kwargs)
        except PermissionError as error:
            raise _explain_open(error, file, mode, settings) from None

    open.__doc__ = original.__doc__
    builtins.open = open
    io.open = open


def _refuse(what, flag):
    return PermissionError(errno.EPERM, "%s%s is not allowed (%s)" % (PREFIX, what, flag))


def _wrap_processes():
    """Without --allow-subprocess seccomp refuses exec and fork; say so."""

    def refuse(name):
        def refused(*args, **kwargs):
            raise _refuse("starting a program or process (os.%s)" % name, "--allow-subprocess")

        return refused

    for name in ("fork", "forkpty", "system", "posix_spawn", "posix_spawnp",
                 "execv", "execve", "execl", "execle", "execlp", "execlpe",
                 "execvp", "execvpe", "spawnv", "spawnve", "spawnl", "spawnle",
                 "popen"):
        if hasattr(os, name):
            setattr(os, name, refuse(name))
    try:
        import _posixsubprocess
    except ImportError:
        return

    def fork_exec(*args, **kwargs):
        raise _refuse("starting a program (subprocess)", "--allow-subprocess")

    _posixsubprocess.fork_exec = fork_exec


def _pinned_table(settings):
    table = {"localhost": ["127.0.0.1", "::1"]}
    for rule in settings["connect"]:
        if rule["host"] is not None:
            table.setdefault(rule["host"].lower(), [])
            table[rule["host"].lower()].extend(rule["addresses"])
    return table


def _wrap_socket(settings):
    try:
        import socket
        import _socket
    except ImportError:
        return
    table = _pinned_table(settings)
    rules = settings["connect"]

    def is_address(host):
        for family in (socket.AF_INET, socket.AF_INET6):
            try:
                socket.inet_pton(family, host)
                return True
            except (OSError, ValueError):
                pass
        return False

    def canonical(host):
        """An address as the kernel will see it (``127.1`` is 127.0.0.1)."""
        try:
            return socket.inet_ntop(socket.AF_INET, socket.inet_aton(host))
        except (OSError, ValueError):
            pass
        try:
            return socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, host))
        except (OSError, ValueError):
            return None

    def allowed(address, port):
        address = canonical(address.split("%")[0]) or address
        for rule in rules:
            if rule["port"] != port:
                continue
            if rule["host"] is None:
                return True
            for pinned in rule["addresses"]:
                if canonical(pinned) == address:
                    return True
        return False

    original_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if host is None or (isinstance(host, (str, bytes)) and is_address(os.fsdecode(host))):
            return original_getaddrinfo(host, port, family, type, proto, flags)
        name = os.fsdecode(host).lower().rstrip(".")
        if name not in table:
            raise socket.gaierror(
                socket.EAI_NONAME,
                "%sname lookups are off: %s is not named in --allow-connect" % (PREFIX, name),
            )
        if type not in (0, socket.SOCK_STREAM):
            return []
        found = []
        for address in table[name]:
            try:
                found.extend(
                    original_getaddrinfo(address, port, family, socket.SOCK_STREAM, proto,
                                         flags | socket.AI_NUMERICHOST)
                )
            except socket.gaierror:
                pass  # an address of the other family than the one asked for
        if not found:
            raise socket.gaierror(socket.EAI_NONAME, "%s%s did not resolve" % (PREFIX, name))
        return found

    def gethostbyname(host):
        return getaddrinfo(host, None, socket.AF_INET)[0][4][0]

    socket.getaddrinfo = getaddrinfo
    socket.gethostbyname = gethostbyname

    def check(sock, address):
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            raise _refuse("a connection over this socket family", "only TCP over IPv4 and IPv6")
        host, port = address[0], address[1]
        if not is_address(host):
            host = getaddrinfo(host, port, sock.family, socket.SOCK_STREAM)[0][4][0]
        if not allowed(host, port):
            raise _refuse("connecting to %s port %s" % (host, port), "--allow-connect")
        return (host, port) + tuple(address[2:])

    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex
    original_init = socket.socket.__init__

    def connect(self, address):
        return original_connect(self, check(self, address))

    def connect_ex(self, address):
        return original_connect_ex(self, check(self, address))

    def __init__(self, *args, **kwargs):
        try:
            original_init(self, *args, **kwargs)
        except PermissionError:
            raise _refuse(
                "this kind of socket",
                "only TCP over IPv4 and IPv6: no unix, UDP, raw, packet or netlink sockets",
            ) from None

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.socket.__init__ = __init__


def _filter_environ(keep, tmp):
    """Library use: the process's environment stays the host's; the app's
    ``os.environ`` (and ``posix.environ``, which CPython's os shares as
    ``os.environ._data``) keep the allowed names only, and the
    temporary-directory names point at the private one, changed without
    calling unsetenv or putenv."""
    keep = set(keep)
    tables = []
    try:
        import posix

        tables.append(posix.environ)
    except (ImportError, AttributeError):
        pass
    data = getattr(os.environ, "_data", None)
    if data is not None and all(data is not t for t in tables):
        tables.append(data)
    for table in tables:
        for key in list(table):
            if os.fsdecode(key) not in keep:
                del table[key]
    if data is not None:
        for name in ("TMPDIR", "TMP", "TEMP"):
            data[os.environ.encodekey(name)] = os.environ.encodevalue(tmp)


def install(settings_json):
    """Called once per interpreter, before the app is imported."""
    settings = json.loads(settings_json)
    _filter_environ(settings["env"], settings["tmp"])
    _wrap_open(settings)
    if not settings["subprocess"]:
        _wrap_processes()
    _wrap_socket(settings)
