#!/usr/bin/env python3
"""A normal client's latency while another uploads a large body as fast as
loopback carries it, against one worker (`-w 1`): the event loop that reads
the upload also serves everyone else, so an upload read to its end in one
turn holds every other connection of the worker until it is done.

    python3 bench/upload.py                          # builds the release binary
    python3 bench/upload.py --binary PATH --megabytes 1024 --rounds 3

Per round: a client sends `POST /` with a body of --megabytes (spilled to a
temporary file by the server), while another sends one `GET /` every 5 ms on
a keep-alive connection; printed: the upload's MB/s, and the normal
requests' count, median, p99 and longest wait during the upload. Bounded:
every socket has a 30 s timeout, and a round ends with its upload.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (free_port, wait_serving, build)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHUNK = b"u" * (1 << 20)


def read_response(sock):
    """One response (Content-Length framed); returns its status line."""
    data = b""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        if not part:
            raise ConnectionError("closed before a response")
        data += part
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        part = sock.recv(65536)
        if not part:
            raise ConnectionError("closed inside a body")
        body += part
    return head.split(b"\r\n", 1)[0]


def upload(port, megabytes, result):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        started = time.monotonic()
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n"
            + b"Content-Length: %d\r\n\r\n" % (megabytes << 20)
        )
        for _ in range(megabytes):
            sock.sendall(CHUNK)
        status = read_response(sock)
        result["seconds"] = time.monotonic() - started
        result["status"] = status


def normal_client(port, done, waits):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        while not done.is_set():
            started = time.monotonic()
            sock.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
            read_response(sock)
            waits.append((time.monotonic() - started) * 1000)
            time.sleep(0.005)


def one_round(port, megabytes):
    done, waits, result = threading.Event(), [], {}
    client = threading.Thread(target=normal_client, args=(port, done, waits))
    client.start()
    deadline = time.monotonic() + 30
    while len(waits) < 10 and client.is_alive() and time.monotonic() < deadline:
        time.sleep(0.005)  # until the normal client is being served
    before = len(waits)
    uploader = threading.Thread(target=upload, args=(port, megabytes, result))
    uploader.start()
    uploader.join(timeout=120)
    during = waits[before:]
    done.set()
    client.join(timeout=35)
    return result, during


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", help="the ferrocorn binary (default: build the release profile)")
    parser.add_argument("--megabytes", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    binary = args.binary or bench.build("release")
    port = bench.free_port()
    limit = str((args.megabytes + 1) << 20)
    server = subprocess.Popen(
        [binary, "-b", f"127.0.0.1:{port}", "-w", "1", "--threads", "2",
         "--limit-request-body", limit, "examples.hello:application"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        if not bench.wait_serving(port, server):
            sys.exit("the server did not start")
        print(f"{binary}: -w 1, a {args.megabytes} MB upload while a keep-alive client sends GET / every 5 ms")
        for round_number in range(1, args.rounds + 1):
            result, during = one_round(port, args.megabytes)
            if "seconds" not in result or not during:
                print(f"round {round_number}: upload incomplete ({result}), {len(during)} normal requests")
                continue
            during.sort()
            p99 = during[min(len(during) - 1, int(len(during) * 0.99))]
            print(
                f"round {round_number}: upload {args.megabytes / result['seconds']:.0f} MB/s "
                f"({result['status'].decode()}); normal requests during it: {len(during)}, "
                f"median {statistics.median(during):.1f} ms, p99 {p99:.1f} ms, max {during[-1]:.1f} ms"
            )
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
