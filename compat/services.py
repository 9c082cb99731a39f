"""Throw-away servers for the compatibility corpus, each on a free loopback
port with its data in a temporary directory: PostgreSQL (SCRAM passwords,
TLS with the corpus CA's certificate), MariaDB, Redis, and ferrocorn itself
serving compat/https_app.py over TLS. Run as root (CI); the database
servers then run as their own users."""

import contextlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PASSWORD = "corpus-pw"


class ServiceError(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, process, what, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(f"{what} exited with {process.returncode} before it listened")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise ServiceError(f"{what} did not listen on 127.0.0.1:{port} within {seconds} s")


def need(program, package):
    path = shutil.which(program) or next(iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{program}"))), None)
    if not path:
        raise ServiceError(f"{program} is missing: install Debian's {package}")
    return str(path)


def make_certificates(directory):
    """A CA ("ferrocorn corpus CA") and a certificate it signed for
    localhost and 127.0.0.1; returns (ca, cert, key) paths."""
    d = Path(directory)
    ca_key, ca, key, csr, cert = (d / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    run = lambda *args: subprocess.run(args, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
        "-days", "2", "-subj", "/CN=ferrocorn corpus CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
    ext = d / "server.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", cert, "-days", "2", "-extfile", ext)
    return ca, cert, key


def _as_user(user, directory):
    info = pwd.getpwnam(user)
    os.chown(directory, info.pw_uid, info.pw_gid)
    return info


def start_postgres(stack, work, ca, cert, key):
    initdb, postgres = need("initdb", "postgresql"), need("postgres", "postgresql")
    data = Path(work) / "pg"
    data.mkdir()
    user = _as_user("postgres", data)
    pwfile = data / "pw"
    pwfile.write_text(PASSWORD)
    for source, name in ((cert, "server.crt"), (key, "server.key")):
        shutil.copy(source, data / name)
        os.chown(data / name, user.pw_uid, user.pw_gid)
    os.chmod(data / "server.key", 0o600)
    os.chown(pwfile, user.pw_uid, user.pw_gid)
    pgdata = data / "data"
    subprocess.run(["runuser", "-u", "postgres", "--", initdb, "-D", str(pgdata), "-U", "corpus",
                    "--pwfile", str(pwfile), "--auth=scram-sha-256", "-E", "UTF8"],
                   check=True, capture_output=True)
    port = free_port()
    process = stack.enter_context(_process(
        ["runuser", "-u", "postgres", "--", postgres, "-D", str(pgdata), "-p", str(port),
         "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={data}",
         "-c", "ssl=on", "-c", f"ssl_cert_file={data / 'server.crt'}", "-c", f"ssl_key_file={data / 'server.key'}",
         "-c", "fsync=off"], data / "log"))
    wait_for_port(port, process, "postgres")
    # The listener opens before the database accepts logins.
    ready = need("pg_isready", "postgresql")
    deadline = time.monotonic() + 30
    while subprocess.run([ready, "-h", "127.0.0.1", "-p", str(port)], capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            raise ServiceError("postgres did not accept connections within 30 s")
        time.sleep(0.2)
    return {"host": "127.0.0.1", "port": port, "user": "corpus", "password": PASSWORD,
            "database": "postgres", "cafile": str(ca)}


def start_mariadb(stack, work):
    install, server, client = need("mariadb-install-db", "mariadb-server"), need("mariadbd", "mariadb-server"), need("mariadb", "mariadb-client")
    data = Path(work) / "mariadb"
    data.mkdir()
    _as_user("mysql", data)
    subprocess.run([install, "--user=mysql", f"--datadir={data / 'data'}", "--auth-root-authentication-method=socket",
                    "--skip-test-db"], check=True, capture_output=True)
    port, sock = free_port(), data / "sock"
    process = stack.enter_context(_process(
        [server, "--no-defaults", "--user=mysql", f"--datadir={data / 'data'}", f"--port={port}",
         "--bind-address=127.0.0.1", f"--socket={sock}", f"--pid-file={data / 'pid'}",
         "--skip-name-resolve", "--innodb-flush-log-at-trx-commit=0"], data / "log"))
    wait_for_port(port, process, "mariadbd")
    sql = (f"CREATE USER 'corpus'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}';"
           "GRANT ALL ON *.* TO 'corpus'@'127.0.0.1'; CREATE DATABASE corpus;")
    subprocess.run([client, f"--socket={sock}", "-uroot", "-e", sql], check=True, capture_output=True)
    return {"host": "127.0.0.1", "port": port, "user": "corpus", "password": PASSWORD, "database": "corpus"}


def start_redis(stack, work):
    server = need("redis-server", "redis-server")
    port = free_port()
    process = stack.enter_context(_process(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(work)], Path(work) / "redis.log"))
    wait_for_port(port, process, "redis-server")
    return f"redis://127.0.0.1:{port}/0"


def start_https(stack, work, binary, cert, key):
    port = free_port()
    process = stack.enter_context(_process(
        [binary, "-b", f"127.0.0.1:{port}", "--certfile", str(cert), "--keyfile", str(key),
         "--chdir", str(HERE), "-w", "1", "--threads", "4", "https_app:application"], Path(work) / "https.log"))
    wait_for_port(port, process, "ferrocorn (HTTPS)")
    return f"https://127.0.0.1:{port}"


@contextlib.contextmanager
def _process(args, log):
    with open(log, "wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def all_services(work, binary):
    """Starts every service; yields the environment the tests read."""
    with contextlib.ExitStack() as stack:
        ca, cert, key = make_certificates(work)
        env = {
            "COMPAT_CA_FILE": str(ca),
            "COMPAT_HTTPS_URL": start_https(stack, work, binary, cert, key),
            "COMPAT_REDIS_URL": start_redis(stack, work),
            "COMPAT_POSTGRES": json.dumps(start_postgres(stack, work, ca, cert, key)),
            "COMPAT_MARIADB": json.dumps(start_mariadb(stack, work)),
        }
        yield env
