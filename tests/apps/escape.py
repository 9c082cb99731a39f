"""An app that tries to get out of ``--sandbox``: ``GET /try/NAME?args``
runs one attempt and answers JSON: ``{"ok": true, "value": ...}`` when it
went through, ``{"ok": false, "type": ..., "errno": ..., "message": ...}``
when it raised. tests/sandbox.rs says which must fail and checks the host.

Attempts use the plain APIs (``os``, ``socket``, ``subprocess``: what
ferrocorn.sandbox wraps) and the raw ones underneath (``posix``,
``_socket``: what it does not), and, with ``--allow-ffi``, raw system calls
through ctypes (``/syscall``), so the kernel's part is tested on its own.
"""

import json
import os
import posix
import threading
import urllib.parse

import _socket
import socket


def _read(a):
    with open(a["path"]) as f:
        return f.read()


def _write(a):
    with open(a["path"], "w") as f:
        return f.write(a.get("text", "x"))


def _symlink_read(a):
    os.symlink(a["target"], a["link"])
    with open(a["link"]) as f:
        return f.read()


def _run(a):
    import subprocess

    return subprocess.run(["/bin/sh", "-c", "echo ran > " + a["marker"]]).returncode


def _posix_system(a):
    status = posix.system("echo ran > " + a["marker"])
    if status != 0:
        raise OSError("system() returned %r" % status)
    return status


def _posix_spawn(a):
    return posix.posix_spawn("/bin/sh", ["sh", "-c", "echo ran > " + a["marker"]], {})


def _fork(a):
    pid = posix.fork()
    if pid == 0:
        posix._exit(0)
    return pid


def _execv(a):
    posix.execv("/bin/sh", ["sh", "-c", "echo ran > " + a["marker"]])


def _family(host):
    return _socket.AF_INET6 if ":" in host else _socket.AF_INET


def _connect(a):
    s = socket.create_connection((a["host"], int(a["port"])), timeout=5)
    s.sendall(b"hello from the sandbox")
    s.close()
    return "connected"


def _raw_connect(a):
    s = _socket.socket(_family(a["host"]), _socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect((a["host"], int(a["port"])))
    s.send(b"hello from the sandbox")
    s.close()
    return "connected"


def _udp(a):
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    return s.sendto(b"hello from the sandbox", (a["host"], int(a["port"])))


def _unix(a):
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    s.connect(a["path"].replace("@", "\0", 1))
    s.send(b"hello from the sandbox")
    return "connected"


def _socket_of(a):
    return _socket.socket(int(a["family"]), int(a["type"]), int(a.get("proto", "0"))).fileno()


def _write_pipes(a):
    """Byte 15 (SIGTERM, as the arbiter's signal pipe carries it) into every
    pipe this process holds."""
    import stat

    written = []
    for fd in range(3, 1024):
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                os.write(fd, bytes([15]))
                written.append(fd)
        except OSError:
            pass
    return written


def _set_data_limit(a):
    """RLIMIT_DATA raised to infinity, or lowered (which the kernel always
    allows an unconfined process). CPython and RustPython report setrlimit's
    EPERM as ValueError("not allowed to raise maximum limit")."""
    import resource

    infinity = resource.RLIM_INFINITY
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if a["to"] == "infinity":
        return resource.setrlimit(resource.RLIMIT_DATA, (infinity, infinity))
    lower = (1 << 40) if soft == infinity else soft - 4096
    return resource.setrlimit(resource.RLIMIT_DATA, (lower, hard))


def _import(a):
    import importlib

    if a.get("unguarded"):
        # The guard is Python and can be taken away; the module must still
        # be missing from the interpreter.
        sys = __import__("sys")
        sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "_DeniedModules"]
    if a.get("route") == "dunder":
        return repr(__import__(a["name"]))
    return repr(importlib.import_module(a["name"]))


def _tempfile(a):
    import tempfile

    fd, path = tempfile.mkstemp()
    os.write(fd, b"spilled")
    os.close(fd)
    with open(path, "rb") as f:
        data = f.read()
    return {"path": path, "data": data.decode()}


def _allowed_write(a):
    path = os.path.join(a["dir"], "made-by-app.txt")
    with open(path, "w") as f:
        f.write("written")
    with open(path) as f:
        data = f.read()
    os.remove(path)
    return data


def _syscall(a):
    """libc's syscall(3) at ``addr`` (found by the test from outside), with
    arguments ``i:N`` (a number), ``s:TEXT`` (a string's address),
    ``in4:PORT`` (a sockaddr_in for 127.0.0.1:PORT), ``rlim:N`` (a struct
    rlimit of N, N)."""
    import ctypes
    import struct

    keep = []

    def argument(spec):
        kind, _, value = spec.partition(":")
        if kind == "i":
            return int(value, 0)
        if kind == "s":
            buffer = ctypes.create_string_buffer(value.encode())
        elif kind == "rlim":
            buffer = ctypes.create_string_buffer(struct.pack("<qq", int(value), int(value)), 16)
        elif kind == "in4":
            buffer = ctypes.create_string_buffer(
                struct.pack("<H", 2) + struct.pack(">H", int(value)) + bytes([127, 0, 0, 1]) + b"\0" * 8, 16
            )
        else:
            raise ValueError(spec)
        keep.append(buffer)
        return ctypes.addressof(buffer)

    args = [argument(spec) for spec in a.get("args", "").split(",") if spec]
    args += [0] * (5 - len(args))
    call = ctypes.CFUNCTYPE(ctypes.c_long, *[ctypes.c_long] * 6, use_errno=True)(int(a["addr"], 16))
    ctypes.set_errno(0)
    result = call(int(a["nr"], 0), *args)
    return {"result": result, "errno": ctypes.get_errno()}


def _sh(a):
    import subprocess

    done = subprocess.run(["/bin/sh", "-c", a["cmd"]], capture_output=True)
    return {"status": done.returncode, "out": done.stdout.decode(), "err": done.stderr.decode()}


def _body(a, environ):
    data = environ["wsgi.input"].read()
    return {"length": len(data), "sum": sum(data) % 251}


ATTEMPTS = {
    "read": _read,
    "list": lambda a: os.listdir(a["path"]),
    "write": _write,
    "mkdir": lambda a: os.mkdir(a["path"]),
    "chmod": lambda a: os.chmod(a["path"], 0o777),
    "chown": lambda a: os.chown(a["path"], 12345, 12345),
    "utime": lambda a: os.utime(a["path"], (0, 0)),
    "symlink_read": _symlink_read,
    "link": lambda a: os.link(a["src"], a["dst"]),
    "rename": lambda a: os.rename(a["src"], a["dst"]),
    "subprocess": _run,
    "system": lambda a: os.system("echo ran > " + a["marker"]),
    "posix_system": _posix_system,
    "posix_spawn": _posix_spawn,
    "fork": _fork,
    "execv": _execv,
    "connect": _connect,
    "raw_connect": _raw_connect,
    "udp": _udp,
    "unix": _unix,
    "socket": _socket_of,
    "kill": lambda a: os.kill(int(a["pid"]), int(a["signal"])),
    # SIGKILL to whichever of the listed workers is not the one answering.
    "kill_sibling": lambda a: os.kill(
        [int(p) for p in a["pids"].split(",") if int(p) != os.getpid()][0], 9
    ),
    "chroot": lambda a: os.chroot(a["path"]),
    "set_data_limit": _set_data_limit,
    "write_pipes": _write_pipes,
    "environ": lambda a: dict(os.environ),
    "import": _import,
    "tempfile": _tempfile,
    "allowed_write": _allowed_write,
    "getpid": lambda a: os.getpid(),
    "sh": _sh,
    "syscall": _syscall,
}


def attempt(name, args, environ=None):
    if name == "body":
        return {"ok": True, "value": _body(args, environ)}
    if name == "thread":
        # The same attempt from a thread the app starts itself.
        box = []
        inner = args["inner"]
        worker = threading.Thread(target=lambda: box.append(attempt(inner, args)))
        worker.start()
        worker.join()
        return box[0]
    try:
        return {"ok": True, "value": ATTEMPTS[name](args)}
    except BaseException as error:
        return {
            "ok": False,
            "type": type(error).__name__,
            "errno": getattr(error, "errno", None),
            "message": str(error),
        }


def application(environ, start_response):
    name = environ["PATH_INFO"].rpartition("/")[2]
    args = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    body = json.dumps(attempt(name, args, environ), default=repr).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
