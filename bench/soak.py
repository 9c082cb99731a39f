#!/usr/bin/env python3
"""Soak: mixed load for a given number of minutes while the arbiter is
signalled and a worker is killed at intervals; what failed, what grew.

    python3 bench/soak.py --minutes 10                 # builds the dist binary
    python3 bench/soak.py --minutes 2 --binary PATH

One ferrocorn (`-w 2`, the app bench/apps/soak_app.py: hello world, a Flask
JSON route, 1 MB responses and uploads) on 127.0.0.1, Flask from PyPI in a
throw-away venv. Load, all bounded by the duration: four wrk processes
(hello and Flask with 8 keep-alive connections each, 1 MB GET and 1 MB POST
with 2 each), slow clients (every second, 10 that send their request head in
three parts over about a second), trickled uploads (every second one more
`POST` announcing `Content-Length: 1000000` and sending a byte a second,
about 5 at a time: each must be answered 408 by `--min-request-rate`),
clients that send a request and reset their connection at once (10 a
second: the server must drop them and serve on), and a new client every 100 ms whose wait
for its first response is recorded (at real-time priority when run as root,
see bench/run.py's measuring_client_priority). Every `--interval` seconds the next of
HUP (new workers, the old retire), TTIN, TTOU, and SIGKILL of one worker.

Printed: requests served and failed by kind (wrk counts its own errors; a
failure of a probing client is attributed to a SIGKILL that came while it
lasted, or within 2 s of it), the longest wait of a new client, and worker RSS at start and end with
the growth per 100,000 requests of the longest-lived worker. Not a test:
README quotes a 10-minute run.
"""

import argparse
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (free_port, wait_serving, worker_pids, make_venv, build, ...)

POST_1MB = os.path.join(bench.ROOT, "bench", "post_1mb.lua")
# name -> (path, connections, extra wrk arguments)
LOADS = {
    "hello": ("/", 8, []),
    "flask": ("/flask", 8, []),
    "get 1 MB": ("/big", 2, []),
    "post 1 MB": ("/big", 2, ["-s", POST_1MB]),
}
WARM_UP = 20
SIGNALS = [("HUP", signal.SIGHUP), ("TTIN", signal.SIGTTIN), ("TTOU", signal.SIGTTOU), ("KILL a worker", None)]


class Record:
    """What the probing threads saw, shared with the main thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.kills = []  # monotonic times of SIGKILLs
        self.counts = {}  # kind -> [served, failed near a kill, failed otherwise]
        self.newcomer_max_ms = 0.0
        self.newcomer_prioritised = False  # see bench.measuring_client_priority
        self.failures = []  # (kind, seconds since start, reason)

    def outcome(self, kind, ok, started, reason=""):
        """A probe's exchange from `started` until now: a failure counts as
        a SIGKILL's when one came while it lasted, or within 2 s of it."""
        ended = time.monotonic()
        with self.lock:
            entry = self.counts.setdefault(kind, [0, 0, 0])
            if ok:
                entry[0] += 1
                return
            near_kill = any(started - 2.0 <= at <= ended + 2.0 for at in self.kills)
            entry[1 if near_kill else 2] += 1
            if not near_kill:
                self.failures.append((kind, reason))


def exchange(port, chunks, pause, timeout=10):
    """Sends `chunks` with `pause` between them on a new connection; True if
    a 200 comes back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as client:
        for index, chunk in enumerate(chunks):
            if index:
                time.sleep(pause)
            client.sendall(chunk)
        return client.recv(16).startswith(b"HTTP/1.1 200")


def newcomers(port, stop, record, started_at):
    request = b"GET / HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n"
    with bench.measuring_client_priority() as raised:
        record.newcomer_prioritised = raised
        while not stop.wait(0.1):
            started = time.monotonic()
            try:
                ok = exchange(port, [request], 0)
                reason = "" if ok else "not a 200"
            except OSError as error:
                ok, reason = False, str(error)
            waited = (time.monotonic() - started) * 1000
            record.outcome("new client", ok, started, "%s at %.0f s" % (reason, started - started_at))
            if ok:
                with record.lock:
                    record.newcomer_max_ms = max(record.newcomer_max_ms, waited)


def slow_clients(port, stop, record, started_at):
    parts = [b"GET / HTTP/1.1\r\n", b"Host: soak\r\nUser-Agent: slow\r\n", b"Connection: close\r\n\r\n"]

    def one():
        started = time.monotonic()
        try:
            ok = exchange(port, parts, 0.5)
            reason = "" if ok else "not a 200"
        except OSError as error:
            ok, reason = False, str(error)
        record.outcome("slow client", ok, started, "%s at %.0f s" % (reason, started - started_at))

    while not stop.wait(1.0):
        threads = [threading.Thread(target=one) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def trickled_uploads(port, stop, record, started_at):
    """One new upload a second, each sending a byte a second until the
    server answers (408 from --min-request-rate after its 5 s grace)."""
    head = b"POST / HTTP/1.1\r\nHost: soak\r\nContent-Length: 1000000\r\n\r\n"

    def one():
        started = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
                client.sendall(head)
                client.setblocking(False)
                answer = b""
                for _ in range(30):
                    try:
                        answer = client.recv(64)
                        break
                    except BlockingIOError:
                        client.sendall(b"x")
                        time.sleep(1)
            ok = answer.startswith(b"HTTP/1.1 408")
            reason = "" if ok else "answered %r" % answer[:20]
        except OSError as error:
            ok, reason = False, str(error)
        record.outcome("trickled upload", ok, started, "%s at %.0f s" % (reason, started - started_at))

    threads = []
    while not stop.wait(1.0):
        threads = [thread for thread in threads if thread.is_alive()]
        thread = threading.Thread(target=one)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()


def resetting_clients(port, stop, record, started_at):
    """Clients that send a request and reset at once (a load balancer's
    timeout): counted as sent; the server must drop them and serve on."""
    request = b"GET /flask HTTP/1.1\r\nHost: soak\r\n\r\n"
    linger = struct.pack("ii", 1, 0)
    while not stop.wait(0.1):
        started = time.monotonic()
        try:
            client = socket.create_connection(("127.0.0.1", port), timeout=5)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            client.sendall(request)
            client.close()
            record.outcome("reset client", True, started)
        except OSError as error:
            record.outcome("reset client", False, started, "%s at %.0f s" % (error, started - started_at))


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def wrk_outcome(text):
    requests = re.search(r"(\d+) requests in", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    failed = sum(int(n) for n in errors.groups()) if errors else 0
    failed += int(non2xx.group(1)) if non2xx else 0
    return (int(requests.group(1)) if requests else 0), failed, (errors.group(0) if errors else "")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--interval", type=float, default=30, help="seconds between signals")
    parser.add_argument("--binary", help="the ferrocorn binary (default: build the dist one)")
    parser.add_argument("--no-kill", action="store_true",
                        help="only HUP, TTIN and TTOU: then no request at all may fail")
    args = parser.parse_args()
    seconds = int(args.minutes * 60)
    binary = os.path.abspath(args.binary) if args.binary else bench.build("release")
    bench.ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="ferrocorn-soak-") as work:
        _venv, site_packages = bench.make_venv(work, [bench.FLASK])
        port = bench.free_port()
        log_path = os.path.join(work, "server.log")
        with open(log_path, "wb") as log:
            server = subprocess.Popen(
                [binary, "-b", "127.0.0.1:%d" % port, "-w", "2", "--chdir", bench.APPS,
                 "--pythonpath", site_packages, "soak_app:app"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            if not bench.wait_serving(port, server):
                sys.exit("the server did not start; see " + log_path)
            signals = [entry for entry in SIGNALS if not (args.no_kill and entry[1] is None)]
            soak(server, port, seconds, args.interval, log_path, signals)
        finally:
            bench.stop_session(server, timeout=30)


def soak(server, port, seconds, interval, log_path, signals):
    record, stop = Record(), threading.Event()
    started_at = time.monotonic()
    wrks = {
        name: subprocess.Popen(
            ["wrk", "-t1", "-c%d" % connections, "-d%ds" % seconds, "--timeout", "10s"] + extra
            + ["http://127.0.0.1:%d%s" % (port, path)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for name, (path, connections, extra) in LOADS.items()
    }
    probes = [threading.Thread(target=target, args=(port, stop, record, started_at))
              for target in (newcomers, slow_clients, trickled_uploads, resetting_clients)]
    for probe in probes:
        probe.start()
    samples = {}  # pid -> [(time, RSS KiB)], once a second
    sent = []
    next_signal, step = started_at + interval, 0
    deadline = started_at + seconds
    while time.monotonic() < deadline:
        time.sleep(1)
        now = time.monotonic()
        for pid in bench.worker_pids(server.pid, include_root=False):
            rss = rss_kib(pid)
            if rss:
                samples.setdefault(pid, []).append((now, rss))
        if now >= next_signal and now < deadline - interval / 2:
            name, number = signals[step % len(signals)]
            step += 1
            next_signal = now + interval
            if number is None:
                workers = bench.worker_pids(server.pid, include_root=False)
                if workers:
                    with record.lock:
                        record.kills.append(now)
                    os.kill(workers[0], signal.SIGKILL)
            else:
                os.kill(server.pid, number)
            sent.append(name)
    stop.set()
    for probe in probes:
        probe.join()
    report(record, wrks, samples, sent, seconds, server, log_path)


def report(record, wrks, samples, sent, seconds, server, log_path):
    total = 0
    print("soak: %d s, -w 2; signals sent: %s" % (seconds, ", ".join(
        "%s x%d" % (name, sent.count(name)) for name, _ in SIGNALS if sent.count(name))))
    print("%-12s %10s %10s  %s" % ("load", "served", "failed", "detail"))
    for name, process in wrks.items():
        served, failed, detail = wrk_outcome(process.communicate(timeout=120)[0])
        total += served
        print("%-12s %10d %10d  %s" % (name, served, failed, detail))
    for kind, (served, near_kill, other) in record.counts.items():
        total += served
        print("%-12s %10d %10d  (%d within 2 s of a SIGKILL, %d otherwise)" % (
            kind, served, near_kill + other, near_kill, other))
    for kind, reason in record.failures[:10]:
        print("  failed away from any SIGKILL: %s: %s" % (kind, reason))
    print("requests served: %d (%.0f/s); longest wait of a new client: %.1f ms%s" % (
        total, total / seconds, record.newcomer_max_ms,
        "" if record.newcomer_prioritised else " (at normal priority: includes its own wait for a CPU)"))
    if samples:
        first_seen = min(history[0][0] for history in samples.values())
        initial = [history[0][1] for history in samples.values() if history[0][0] - first_seen < 5]
        final = [samples[pid][-1][1] for pid in bench.worker_pids(server.pid, include_root=False)
                 if pid in samples]
        print("worker RSS: %s MB at start, %s MB at the end" % (
            "/".join("%.0f" % (r / 1024) for r in initial), "/".join("%.0f" % (r / 1024) for r in final)))
        pid, history = max(samples.items(), key=lambda item: item[1][-1][0] - item[1][0][0])
        # Growth after the first WARM_UP seconds of its life (imports, caches
        # filled by the first requests), against its share of the requests:
        # the server's rate over that span, split over the two workers.
        warm = [sample for sample in history if sample[0] - history[0][0] >= WARM_UP] or history
        (since, rss_from), (until, rss_to) = warm[0], history[-1]
        share = total / seconds * (until - since) / 2
        growth = (rss_to - rss_from) / 1024
        print("longest-lived worker: %.0f s; RSS %.1f MB at %.0f s of its life, %.1f MB at the end: "
              "%+.2f MB per 100,000 of its ~%d requests since" % (
                  history[-1][0] - history[0][0], history[0][1] / 1024 if not warm else rss_from / 1024,
                  since - history[0][0], rss_to / 1024, growth * 100000 / max(share, 1), share))
    with open(log_path, errors="replace") as log:
        text = log.read()
    panics = text.count("panicked")
    print("server log: %d lines, %d panics, %d worker timeouts" % (
        text.count("\n"), panics, text.count("Worker timed out")))


if __name__ == "__main__":
    main()
