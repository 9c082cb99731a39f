#!/usr/bin/env python3
"""Connection pressure: what an idle or slow connection costs a ferrocorn
worker, and whether a normal client is still served promptly while far more
slow clients than `--worker-connections` allows hold on.

    python3 bench/pressure.py                       # builds the release binary
    python3 bench/pressure.py --binary PATH --slow 10000

Two measurements, both on 127.0.0.1 and bounded in count and time:

1. Memory: one worker (`--worker-connections` above the count), its RSS
   before and after N connections are opened and left idle after one
   keep-alive request each, then after N that sent half a request head.
   Kernel socket buffers are not in a process's RSS and are not counted.
2. Slow clients beyond the limit: the default `-w 2 --worker-connections
   1000` (2,000 connections held at most), a second process opening
   `2000 + --slow` connections that each send half a request head and wait,
   reopening those the server closes. A normal client sends one
   `Connection: close` request every 20 ms while the flood arrives, then 100
   more once it is established; printed: median, p99 and longest wait, and
   any request not answered within 5 s.
3. Trickled uploads beyond the limit: the same, with connections that each
   send a `POST` head announcing `Content-Length: 1000000` and then one body
   byte per second (slowloris on bodies), reopened when the server closes
   them (shed for new clients, or cut by `--min-request-rate`).
"""

import argparse
import os
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (free_port, wait_serving, worker_pids, memory_mb, build)

HALF_HEAD = b"GET /slow HTTP/1.1\r\nHost: bench\r\n"
UPLOAD_HEAD = b"POST /upload HTTP/1.1\r\nHost: bench\r\nContent-Length: 1000000\r\n\r\nx"
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"


def allow_descriptors(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < needed:
        sys.exit("pressure.py needs %d descriptors; the hard limit is %d" % (needed, hard))
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))


def start_server(binary, port, args):
    command = [binary, "-b", "127.0.0.1:%d" % port, "--chdir", bench.APPS] + args + ["bench_apps:hello"]
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    if not bench.wait_serving(port, process):
        process.kill()
        log.seek(0)
        sys.exit("the server did not start:\n" + log.read().decode(errors="replace"))
    return process, log


def open_connections(port, count, first_bytes, read_response):
    """`count` connections that sent `first_bytes` (and read one response,
    if asked), opened without blocking; the sockets stay open."""
    selector = selectors.DefaultSelector()
    opened, pending = [], 0
    deadline = time.monotonic() + 60
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        selector.register(sock, selectors.EVENT_WRITE, "connecting")
        pending += 1
        opened.append(sock)
    while pending and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=1):
            sock = key.fileobj
            if key.data == "connecting":
                try:
                    sock.send(first_bytes)
                except OSError:
                    selector.unregister(sock)
                    pending -= 1
                    continue
                if read_response:
                    selector.modify(sock, selectors.EVENT_READ, "reading")
                    continue
            else:
                try:
                    if not sock.recv(65536):
                        pass
                except OSError:
                    pass
            selector.unregister(sock)
            pending -= 1
    selector.close()
    return opened


def private_and_rss_kib(pid):
    totals = {"Rss": 0, "Private_Dirty": 0}
    with open("/proc/%d/smaps_rollup" % pid) as rollup:
        for line in rollup:
            key, _, rest = line.partition(":")
            if key in totals:
                totals[key] += int(rest.split()[0])
    return totals["Rss"], totals["Private_Dirty"]


def measure_memory(binary, count):
    port = bench.free_port()
    process, _log = start_server(binary, port, ["-w", "1", "--worker-connections", str(2 * count + 100)])
    try:
        worker = bench.worker_pids(process.pid, include_root=False)[0]
        time.sleep(1.5)  # the loop's tick gives back read buffers of idle connections
        base = private_and_rss_kib(worker)
        idle = open_connections(port, count, b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n", read_response=True)
        time.sleep(1.5)
        after_idle = private_and_rss_kib(worker)
        slow = open_connections(port, count, HALF_HEAD, read_response=False)
        time.sleep(1.5)
        after_slow = private_and_rss_kib(worker)
        for sock in idle + slow:
            sock.close()
    finally:
        bench.stop_session(process, timeout=30)
    per = lambda a, b: (b[0] - a[0]) * 1024 / count  # noqa: E731
    print("memory per connection, one worker, %d of each (bytes of worker RSS):" % count)
    print("  idle keep-alive (after one request): %6.0f" % per(base, after_idle))
    print("  half a request head:                 %6.0f" % per(after_idle, after_slow))
    print("  worker RSS: %.1f MB empty, %.1f MB with all %d" % (base[0] / 1024, after_slow[0] / 1024, 2 * count))


def flood(port, count, seconds, kind):
    """Attacker role (its own process, so its work does not delay the normal
    client's measurements): keeps `count` slow connections open for
    `seconds`, reopening those the server closes. `kind` "heads": each sent
    half a request head; "uploads": each trickles a body a byte a second."""
    allow_descriptors(count + 256)
    selector = selectors.DefaultSelector()
    live = 0
    reopened = 0
    first_bytes = UPLOAD_HEAD if kind == "uploads" else HALF_HEAD
    trickling = set()
    next_trickle = time.monotonic() + 1

    def open_one():
        nonlocal live
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        selector.register(sock, selectors.EVENT_WRITE)
        live += 1

    for _ in range(count):
        open_one()
    print("flood: %d connecting" % count, flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if kind == "uploads" and time.monotonic() >= next_trickle:
            next_trickle += 1
            for sock in list(trickling):
                try:
                    sock.send(b"x")
                except OSError:
                    pass  # its close is seen as readable below
        for key, events in selector.select(timeout=0.2):
            sock = key.fileobj
            closed = False
            if events & selectors.EVENT_WRITE:
                try:
                    sock.send(first_bytes)
                    selector.modify(sock, selectors.EVENT_READ)
                    trickling.add(sock)
                except OSError:
                    closed = True
            else:
                try:
                    closed = not sock.recv(4096)
                except OSError:
                    closed = True
            if closed:
                trickling.discard(sock)
                selector.unregister(sock)
                sock.close()
                live -= 1
                reopened += 1
                open_one()
    print("flood: done, %d reopened after the server closed them" % reopened, flush=True)


def timed_request(port):
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(REQUEST)
            if not client.recv(16).startswith(b"HTTP/1.1 200"):
                return None
    except OSError:
        return None
    return (time.monotonic() - started) * 1000


def summary(label, waits):
    answered = sorted(w for w in waits if w is not None)
    lost = len(waits) - len(answered)
    if not answered:
        print("  %-28s none answered of %d" % (label, len(waits)))
        return
    p99 = answered[min(len(answered) - 1, int(len(answered) * 0.99))]
    print("  %-28s %4d requests: median %7.2f ms, p99 %7.2f ms, longest %7.2f ms, unanswered %d" % (
        label, len(waits), answered[len(answered) // 2], p99, answered[-1], lost))


def server_counters(log):
    """What the server counted, from its `/metrics` (address in its log)."""
    log.seek(0)
    text = log.read().decode(errors="replace")
    marker = "Metrics and health at: http://"
    if marker not in text:
        return "server counters: no metrics address in the log"
    url = "http://" + text.split(marker, 1)[1].split()[0]
    import urllib.request
    with urllib.request.urlopen(url, timeout=5) as reply:
        page = reply.read().decode()
    wanted = ("ferrocorn_connections_shed_total", "ferrocorn_uploads_shed_total",
              "ferrocorn_requests_below_min_rate_total")
    values = [line for line in page.splitlines() if line.split(" ")[0] in wanted]
    return "server counters: " + ", ".join(values)


def measure_flood(binary, slow, seconds, kind):
    port = bench.free_port()
    process, log = start_server(binary, port, ["-w", "2", "--metrics-bind", "127.0.0.1:0"])
    count = 2000 + slow
    attacker = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--role", "flood", "--port", str(port),
         "--count", str(count), "--seconds", str(seconds), "--kind", kind],
        stdout=subprocess.PIPE, text=True)
    try:
        attacker.stdout.readline()  # "flood: N connecting"
        during, after = [], []
        # As a client on another host (see bench.measuring_client_priority).
        with bench.measuring_client_priority():
            flood_until = time.monotonic() + min(3.0, seconds / 3)
            while time.monotonic() < flood_until:
                during.append(timed_request(port))
                time.sleep(0.02)
            for _ in range(100):
                after.append(timed_request(port))
        what = "trickled uploads" if kind == "uploads" else "half-head connections"
        print("a normal client, %d %s (%d beyond the limit of 2 x 1000):" % (count, what, slow))
        summary("while the flood connects", during)
        summary("once it is established", after)
        attacker.wait(timeout=seconds + 60)
        print("  " + attacker.stdout.read().strip())
        print("  " + server_counters(log))
    finally:
        if attacker.poll() is None:
            attacker.kill()
        bench.stop_session(process, timeout=30)
    log.seek(0)
    lines = log.read().decode(errors="replace").splitlines()
    for topic in ("connection limit", "min-request-rate"):
        about = [l for l in lines if topic in l]
        print("  server log: %d lines about the %s%s" % (
            len(about), topic, (", last: " + about[-1].split("] ")[-1]) if about else ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", help="the ferrocorn binary to measure (default: build the release one)")
    parser.add_argument("--slow", type=int, default=10000, help="slow connections beyond the limit")
    parser.add_argument("--idle", type=int, default=2000, help="connections for the memory measurement")
    parser.add_argument("--seconds", type=float, default=15, help="how long the flood lasts")
    parser.add_argument("--role", choices=["flood"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--kind", choices=["heads", "uploads"], default="heads", help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=["memory", "heads", "uploads"],
                        help="run one measurement (default: all three)")
    args = parser.parse_args()
    if args.role == "flood":
        flood(args.port, args.count, args.seconds, args.kind)
        return
    binary = args.binary or bench.build("release")
    allow_descriptors(2 * args.idle + 256)
    if args.only in (None, "memory"):
        measure_memory(binary, args.idle)
    for kind in ("heads", "uploads"):
        if args.only in (None, kind):
            measure_flood(binary, args.slow, args.seconds, kind)


if __name__ == "__main__":
    main()
