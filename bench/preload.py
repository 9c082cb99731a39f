#!/usr/bin/env python3
"""Memory and recovery with and without --preload.

    python3 bench/preload.py                       # Flask and Django, -w 4
    python3 bench/preload.py --binary /tmp/ferrocorn --apps flask --requests 10000,100000

For each app (examples/flask_app.py, examples/django_app.py, from the pinned
wheels of examples/requirements.txt, fetched with pip download) and each mode
(lazy: every worker imports the app; preload: workers forked from one
imported app), starts `ferrocorn -w 4` on a loopback port and reports:

- total PSS of all its processes (arbiter, preloading process, workers) once
  every worker has booted and served a 2,000-request warm-up, and after
  each count of --requests (wrk keep-alive, -c64);
- per worker: PSS, private dirty and shared memory at the same points;
- the time from SIGKILL of a worker to its replacement answering, with
  `-w 1` so that the first answer after the kill can only come from the
  replacement (median of --kills).

Compares with one lazily started worker's PSS (the goal: 4 preloaded
workers <= 1.5x of it) and prints req/s of the wrk runs in both modes.
Traffic stays on 127.0.0.1; every run is bounded.
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402

ROOT = bench.ROOT
APPS = {
    "flask": ("examples.flask_app:app", "/"),
    "django": ("examples.django_app:application", "/"),
}


def fetch_wheels(work):
    """The pinned pure-Python wheels, as a --pythonpath value."""
    cached = os.path.join(bench.target_dir(), "x86_64-unknown-linux-gnu", "tmp", "framework-wheels")
    directory = cached if os.path.isdir(cached) and os.listdir(cached) else os.path.join(work, "wheels")
    if directory != cached:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "--platform", "any", "--implementation", "py", "--abi", "none",
                        "--python-version", "3.14", "-d", directory,
                        "-r", os.path.join(ROOT, "examples", "requirements.txt")], check=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "-d", directory, "-r", os.path.join(ROOT, "examples", "requirements-fallback.txt")],
                       check=True)
    return ",".join(sorted(os.path.join(directory, name) for name in os.listdir(directory)
                           if name.endswith(".whl")))


def rollup(pid):
    """PSS, private dirty and shared (clean + dirty) kB of one process."""
    fields = {}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as text:
            for line in text:
                key, _, rest = line.partition(":")
                if rest.strip().endswith("kB"):
                    fields[key] = int(rest.split()[0])
    except OSError:
        return None
    return {
        "pss": fields.get("Pss", 0),
        "private": fields.get("Private_Dirty", 0),
        "shared": fields.get("Shared_Clean", 0) + fields.get("Shared_Dirty", 0),
    }


def processes(arbiter):
    """(pid, name) of the arbiter and every descendant."""
    found = []
    for pid in bench.worker_pids(arbiter, include_root=True):
        try:
            with open("/proc/%d/comm" % pid) as comm:
                found.append((pid, comm.read().strip()))
        except OSError:
            continue
    return found


def snapshot(arbiter):
    """Total PSS (MB) of every process, and the per-worker figures (MB)."""
    total, workers = 0, []
    for pid, name in processes(arbiter):
        figures = rollup(pid)
        if figures is None:
            continue
        total += figures["pss"]
        if name.endswith("-work"):
            workers.append({key: value / 1024 for key, value in figures.items()})
    return total / 1024, workers


def start(binary, pythonpath, app, workers, preload, port, log):
    """ferrocorn, once all `workers` have booted (their log lines say so)."""
    command = [binary, "-b", "127.0.0.1:%d" % port, "-w", str(workers), "--log-level", "info",
               "--pythonpath", pythonpath] + (["--preload"] if preload else []) + [app]
    with open(log, "w") as stream:
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stream,
                                   start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        with open(log) as text:
            if text.read().count("Booted worker") >= workers and bench.wait_serving(port, process):
                return process
        time.sleep(0.05)
    stop(process)
    raise SystemExit("ferrocorn did not boot %d workers: %s" % (workers, " ".join(command)))


def stop(process):
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def serve_requests(port, path, count):
    """Keep-alive wrk runs until `count` requests are served; their req/s."""
    served, rates = 0, []
    while served < count:
        duration = 2 if count - served < 20000 else 5
        result = subprocess.run(["wrk", "-t1", "-c64", "-d%ds" % duration, "--timeout", "5s",
                                 "http://127.0.0.1:%d%s" % (port, path)],
                                capture_output=True, text=True, timeout=duration + 30).stdout
        done = [line for line in result.splitlines() if "requests in" in line]
        if not done:
            raise SystemExit("wrk failed: %s" % result)
        served += int(done[0].split()[0])
        rates.append(float(result.split("Requests/sec:")[1].split()[0]))
    return served, statistics.median(rates)


def answered(port, path):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as client:
            client.sendall(b"GET %s HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n" % path.encode())
            return client.recv(16).startswith(b"HTTP/1.1 ")
    except OSError:
        return False


def replacement_ms(binary, pythonpath, app, path, preload, kills, log):
    """SIGKILL of the only worker to the first answer (the replacement's)."""
    port = bench.free_port()
    process = start(binary, pythonpath, app, 1, preload, port, log)
    times = []
    try:
        for _ in range(kills):
            worker = [pid for pid, name in processes(process.pid) if name.endswith("-work")][0]
            killed = time.monotonic()
            os.kill(worker, signal.SIGKILL)
            deadline = killed + 30
            while time.monotonic() < deadline and not answered(port, path):
                time.sleep(0.001)
            times.append((time.monotonic() - killed) * 1000)
            time.sleep(0.3)
    finally:
        stop(process)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", help="the ferrocorn binary (default: build the release profile)")
    parser.add_argument("--apps", default="flask,django")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--requests", default="10000,100000", help="request counts to measure memory after")
    parser.add_argument("--kills", type=int, default=5)
    args = parser.parse_args()
    binary = os.path.abspath(args.binary) if args.binary else bench.build("release")
    bench.ensure_wrk()
    counts = [int(n) for n in args.requests.split(",") if n]
    with tempfile.TemporaryDirectory(prefix="ferrocorn-preload-bench-") as work:
        pythonpath = fetch_wheels(work)
        for name in args.apps.split(","):
            app, path = APPS[name]
            print("\n== %s, -w %d" % (name, args.workers))
            one_lazy = None
            for preload in (False, True):
                mode = "preload" if preload else "lazy"
                port = bench.free_port()
                log = os.path.join(work, "%s-%s.log" % (name, mode))
                process = start(binary, pythonpath, app, args.workers, preload, port, log)
                try:
                    # Warm-up: every route the benchmark uses has run once per worker.
                    serve_requests(port, path, 2000)
                    served, rates = 0, []
                    points = [0] + counts
                    for point in points:
                        if point > served:
                            done, rate = serve_requests(port, path, point - served)
                            served += done
                            rates.append(rate)
                        total, workers = snapshot(process.pid)
                        if not preload and point == 0 and workers:
                            one_lazy = statistics.median(w["pss"] for w in workers)
                        print("%-8s after %7d requests: total PSS %6.1f MB; per worker PSS %s, private dirty %s,"
                              " shared %s MB" % (
                                  mode, served, total,
                                  "/".join("%.0f" % w["pss"] for w in workers),
                                  "/".join("%.0f" % w["private"] for w in workers),
                                  "/".join("%.0f" % w["shared"] for w in workers)))
                    if rates:
                        print("%-8s wrk -c64 keep-alive req/s (median of runs): %.0f" % (mode, statistics.median(rates)))
                    if preload and one_lazy:
                        total, workers = snapshot(process.pid)
                        print("preload / one lazy worker's PSS (%.1f MB): the %d workers %.2fx, all processes %.2fx"
                              " (goal <= 1.5x)" % (one_lazy, len(workers), sum(w["pss"] for w in workers) / one_lazy,
                                                   total / one_lazy))
                finally:
                    stop(process)
                replaced = replacement_ms(binary, pythonpath, app, path, preload, args.kills, log)
                print("%-8s SIGKILL of the worker to its replacement answering (-w 1, median of %d): %.0f ms"
                      % (mode, args.kills, replaced))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
