#!/usr/bin/env python3
"""ferrocorn against its peers, interleaved so machine drift cancels out.

    python3 bench/run.py                 # full run (about 15 minutes on 2 cores)
    python3 bench/run.py --duration 3 --rounds 1 --scenarios hello-ka-w1,flask-ka-w2
    python3 bench/run.py --scenarios tls-hello-ka-w2,tls-hello-close-w2,tls-flask-ka-w2
    python3 bench/run.py --baseline OLD_BINARY --servers ferrocorn,ferrocorn-baseline   # a change's cost

Builds the binary we ship (cargo's `release` profile: fat LTO; `--binary`
measures a given one, such as
the PGO build of bench/build_pgo.py), makes a throw-away venv with Gunicorn (sync and
gthread), Granian (--interface wsgi), Waitress and Flask from PyPI, installs
wrk with apt-get if missing, then for each scenario and round starts each
server (in an order that rotates from round to round) on a loopback port of its own, waits until it answers HTTP, warms it up for 2 s, runs `wrk -t1 -c64 --latency`, and
records requests/s, p50/p99 latency, the longest a new client waited for
its first response meanwhile (one arrives every 100 ms, at real-time
priority when run as root, as a client on another host; the worst round is
shown), the RSS and PSS of
its worker processes and the CPU time its processes spent per request (ferrocorn's split
into interpreter threads and the rest, to tell the app's cost from the
server's).
The tls-* scenarios serve over TLS (a self-signed certificate made with
openssl): ferrocorn, Granian and Gunicorn terminating TLS themselves, and
nginx terminating it in front of plain ferrocorn.
Prints one table per scenario with the ratio of ferrocorn to each peer,
and for hello and Flask the ratio of ferrocorn under --sandbox, with
--metrics-bind and with --preload, to ferrocorn.
Traffic stays on 127.0.0.1; every run is bounded by --duration.
"""

import argparse
import contextlib
import os
import re
import shutil
import signal
import shlex
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPS = os.path.join(ROOT, "bench", "apps")
FLASK = "flask==3.1.0"
PEERS = ["gunicorn==27.0.1", "granian==2.8.9", "waitress==3.0.2", FLASK]

# name -> (app module:callable, path, wrk extra args)
APPS_BY_KIND = {
    "hello": ("bench_apps:hello", "/", []),
    "flask": ("flask_json:app", "/", []),
    "get1mb": ("bench_apps:big", "/", []),
    "post1mb": ("bench_apps:big", "/", ["-s", os.path.join(ROOT, "bench", "post_1mb.lua")]),
}


def scenarios():
    found = []
    for kind in ("hello", "flask"):
        for workers in (1, 2):
            for mode in ("ka", "close"):
                found.append(("%s-%s-w%d" % (kind, mode, workers), kind, workers, mode))
    found.append(("get1mb-ka-w2", "get1mb", 2, "ka"))
    found.append(("post1mb-ka-w2", "post1mb", 2, "ka"))
    # TLS (README "TLS"): each server terminating it itself, and nginx
    # terminating it in front of ferrocorn.
    found.append(("tls-hello-ka-w2", "hello", 2, "ka"))
    found.append(("tls-hello-close-w2", "hello", 2, "close"))
    found.append(("tls-flask-ka-w2", "flask", 2, "ka"))
    return found


def make_certificate(work):
    """A self-signed certificate for 127.0.0.1 (wrk does not verify it)."""
    cert, key = os.path.join(work, "bench-cert.pem"), os.path.join(work, "bench-key.pem")
    if not os.path.exists(cert):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def open_client(port, tls, timeout):
    """A connection to the server under test: TLS when it speaks TLS."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if not tls:
        return raw
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context.wrap_socket(raw)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


NGINX = "/usr/sbin/nginx"


def nginx_with(work, name, workers, http_block):
    """An nginx command for a configuration of its own under `work`, with
    `http_block` as its http { } contents."""
    prefix = os.path.join(work, name)
    os.makedirs(os.path.join(prefix, "logs"), exist_ok=True)
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write("daemon off; worker_processes %d; pid %s/nginx.pid; error_log %s/logs/error.log;\n"
                "events { worker_connections 1024; }\nhttp { access_log off; %s }\n"
                % (workers, prefix, prefix, http_block))
    return [NGINX, "-p", prefix, "-c", conf]


def nginx_command(work, workers, port):
    """nginx answering `return 200` with hello's body: the ceiling for hello."""
    return nginx_with(work, "nginx-%d" % port, workers,
                      "server { listen 127.0.0.1:%d;\n"
                      "  location / { default_type text/plain; return 200 \"Hello, world!\\n\"; } }" % port)


def interpreter_threads(workers):
    """ferrocorn's --threads: one interpreter per core over all workers. The
    interpreters are CPU-bound; more than the cores only adds switching (on 2
    cores: Flask -w1 7.5k req/s with 2 threads, 5.1k with 1, 6.8k with 3;
    hello -w2 113k with 1 thread per worker, 75k with 2)."""
    return max(1, (os.cpu_count() or 1) // workers)


def nginx_tls_command(work, workers, port, backend):
    """nginx terminating TLS on `port` and proxying to `backend` (keep-alive
    upstream connections): the set-up ferrocorn needed before it had TLS."""
    cert, key = make_certificate(work)
    return nginx_with(work, "nginx-tls-%d" % port, workers,
                      "upstream app { server %s; keepalive 64; }\n"
                      "  server { listen 127.0.0.1:%d ssl; ssl_certificate %s; ssl_certificate_key %s;\n"
                      "    location / { proxy_pass http://app; proxy_http_version 1.1;\n"
                      "      proxy_set_header Connection \"\"; proxy_set_header Host $host; } }"
                      % (backend, port, cert, key))


def tls_commands(binary, venv, ferrocorn, app, workers, port, work):
    """The TLS scenarios' servers: ferrocorn, Granian and Gunicorn with their
    own TLS, and nginx terminating TLS for ferrocorn on a second port."""
    cert, key = make_certificate(work)
    bin_dir = os.path.join(venv, "bin")
    module, _, attr = app.partition(":")
    bind = "127.0.0.1:%d" % port
    commands = {
        "ferrocorn": ferrocorn + ["-b", bind, "--certfile", cert, "--keyfile", key, app],
        "granian": [os.path.join(bin_dir, "granian"), "--interface", "wsgi", "--host", "127.0.0.1", "--port",
                    str(port), "--workers", str(workers), "--log-level", "warning", "--ssl-certificate", cert,
                    "--ssl-keyfile", key, "%s:%s" % (module, attr)],
        "gunicorn-gthread": [os.path.join(bin_dir, "gunicorn"), "-b", bind, "-w", str(workers), "-k", "gthread",
                             "--threads", "4", "--log-level", "warning", "--certfile", cert, "--keyfile", key,
                             app],
    }
    if os.path.exists(NGINX):
        backend = "127.0.0.1:%d" % free_port()
        # One session: nginx in front (exec'd), ferrocorn behind it.
        behind = " ".join(shlex.quote(word) for word in ferrocorn + ["-b", backend, app])
        front = " ".join(shlex.quote(word) for word in nginx_tls_command(work, workers, port, backend))
        commands["nginx-tls+ferrocorn"] = ["sh", "-c", "%s & exec %s" % (behind, front)]
    return commands


def server_commands(binary, venv, site_packages, app, workers, port, work=None, kind=None, tls=False):
    bind = "127.0.0.1:%d" % port
    bin_dir = os.path.join(venv, "bin")
    module, _, attr = app.partition(":")
    extra = {}
    if tls:
        ferrocorn = [binary, "-w", str(workers), "--threads", str(interpreter_threads(workers)),
                     "--log-level", "warning", "--pythonpath", site_packages]
        return tls_commands(binary, venv, ferrocorn, app, workers, port, work)
    if kind == "hello" and work and os.path.exists(NGINX):
        extra["nginx"] = nginx_command(work, workers, port)
    ferrocorn = [binary, "-b", bind, "-w", str(workers), "--threads", str(interpreter_threads(workers)),
                 "--log-level", "warning", "--pythonpath", site_packages]
    if kind in ("hello", "flask"):
        # The sandbox's cost: the same server confined (README "Sandbox").
        extra["ferrocorn-sandbox"] = ferrocorn + ["--sandbox", app]
        # The metrics' cost: the same server counting for --metrics-bind
        # (README "Metrics, health and clusters").
        extra["ferrocorn-metrics"] = ferrocorn + ["--metrics-bind", "127.0.0.1:%d" % free_port(), app]
        # Workers forked from one imported app (README "--preload").
        extra["ferrocorn-preload"] = ferrocorn + ["--preload", app]
    return extra | {
        "ferrocorn": ferrocorn + [app],
        "gunicorn-sync": [os.path.join(bin_dir, "gunicorn"), "-b", bind, "-w", str(workers), "--log-level",
                          "warning", app],
        "gunicorn-gthread": [os.path.join(bin_dir, "gunicorn"), "-b", bind, "-w", str(workers), "-k", "gthread",
                             "--threads", "4", "--log-level", "warning", app],
        "granian": [os.path.join(bin_dir, "granian"), "--interface", "wsgi", "--host", "127.0.0.1", "--port",
                    str(port), "--workers", str(workers), "--log-level", "warning", "%s:%s" % (module, attr)],
        # Waitress has no worker processes; it is run once with 4 threads whatever the scenario.
        "waitress": [os.path.join(bin_dir, "waitress-serve"), "--listen", bind, "--threads", "4", app],
    }


def wait_serving(port, process, timeout=30, tls=False):
    """Until the server answers HTTP, not just accepts: a prefork server
    listens before its workers have imported the app, and measuring then
    would count their start-up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with open_client(port, tls, 5) as probe:
                probe.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if probe.recv(16).startswith(b"HTTP/1."):
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def worker_pids(pid, include_root):
    """`pid`'s descendants (its workers), and `pid` itself if asked."""
    output = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    children = {}
    for line in output.splitlines():
        p, pp = (int(x) for x in line.split())
        children.setdefault(pp, []).append(p)
    found, stack = ([pid] if include_root else []), list(children.get(pid, []))
    while stack:
        p = stack.pop()
        found.append(p)
        stack.extend(children.get(p, []))
    return found


def memory_mb(pids):
    """Summed RSS and PSS of `pids`. PSS divides each shared page among the
    processes mapping it, so forked workers sharing the binary's and the
    interpreter's pages are not counted once per worker as RSS counts them."""
    totals = {"Rss": 0, "Pss": 0}
    for pid in pids:
        try:
            with open("/proc/%d/smaps_rollup" % pid) as rollup:
                for line in rollup:
                    key, _, rest = line.partition(":")
                    if key in totals:
                        totals[key] += int(rest.split()[0])
        except OSError:
            continue
    return totals["Rss"] / 1024, totals["Pss"] / 1024


def cpu_seconds_by_thread(session):
    """CPU time (user + system) so far of every thread of every process in
    the session `session`, keyed by thread name (threads of one name summed)."""
    ticks = os.sysconf("SC_CLK_TCK")
    totals = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.getsid(int(pid)) != session:
                continue
            for tid in os.listdir("/proc/%s/task" % pid):
                with open("/proc/%s/task/%s/stat" % (pid, tid)) as stat:
                    text = stat.read()
                name = text[text.index("(") + 1:text.rindex(")")]
                fields = text[text.rindex(")") + 2:].split()
                # utime and stime: fields 14 and 15 of stat(5), counted from the pid.
                seconds = (int(fields[11]) + int(fields[12])) / ticks
                totals[name] = totals.get(name, 0.0) + seconds
        except (OSError, ValueError):
            continue  # a process or thread that ended meanwhile
    return totals


def cpu_per_request_us(before, after, requests):
    """CPU µs per request over all threads, and (for ferrocorn) split into its
    interpreter threads and the rest (event loops, arbiter)."""
    spent = {name: after[name] - before.get(name, 0.0) for name in after}
    total = sum(spent.values())
    interpreters = sum(v for name, v in spent.items() if name.startswith("interpreter"))
    per = lambda seconds: seconds / requests * 1e6 if requests else None
    return per(total), per(interpreters) if interpreters else None


def parse_latency(text, label):
    match = re.search(r"^\s+%s\s+([\d.]+)(us|ms|s)\s*$" % re.escape(label), text, re.M)
    if not match:
        return None
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def run_wrk(port, path, mode, duration, extra, tls=False):
    command = ["wrk", "-t1", "-c64", "-d%ds" % duration, "--latency", "--timeout", "5s"] + extra
    if mode == "close":
        command += ["-H", "Connection: close"]
    url = "%s://127.0.0.1:%d%s" % ("https" if tls else "http", port, path)
    result = subprocess.run(command + [url], capture_output=True, text=True,
                            timeout=duration + 30)
    text = result.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": parse_latency(text, "50%"),
        "p99": parse_latency(text, "99%"),
        "errors": (errors.group(1) if errors else "") + (" non2xx=%s" % non2xx.group(1) if non2xx else ""),
    }


@contextlib.contextmanager
def measuring_client_priority():
    """Runs the calling thread, a client timing how long the server makes
    it wait, at real-time priority within the block; yields whether it
    could (root only). Its own wait for a CPU is not the server's: on 2
    cores shared with wrk and the server, a client at normal priority sent
    its ClientHello 53 ms after its connect, and read at 84.8 ms a response
    the server had finished at 34.5 ms (tcpdump on lo, TLS Flask -w 2,
    2026-12-04). A client on another host does not wait so; this one
    sleeps between requests, so it takes little CPU from the server. Only
    this thread: processes started meanwhile would inherit the priority."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except (OSError, AttributeError):
        yield False
        return
    try:
        yield True
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def probe_new_clients(port, path, stop, latencies_ms, tls=False, prioritised=None):
    """Until `stop` is set, every 100 ms a new client sends one request; the
    time until its response starts goes to `latencies_ms`. While wrk keeps
    the server busy this shows whether a newcomer is served promptly or left
    waiting in the listen backlog behind the clients already connected.
    `prioritised` (a list) gets whether the client ran at real-time
    priority (see measuring_client_priority)."""
    request = b"GET %s HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n" % path.encode()
    with measuring_client_priority() as raised:
        if prioritised is not None:
            prioritised.append(raised)
        while not stop.wait(0.1):
            started = time.monotonic()
            try:
                with open_client(port, tls, 10) as client:
                    client.sendall(request)
                    answered = client.recv(16).startswith(b"HTTP/1.")
            except OSError:
                answered = False
            latencies_ms.append((time.monotonic() - started) * 1000 if answered else float("inf"))


# Whether each newcomer probe ran at real-time priority.
PROBE_PRIORITISED = []


def measure(name, command, env, port, kind, mode, duration, tls=False):
    app, path, extra = APPS_BY_KIND[kind]
    process = subprocess.Popen(command, cwd=APPS, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        if not wait_serving(port, process, tls=tls):
            return None
        # Warm-up, long enough for every worker of a prefork server to boot.
        run_wrk(port, path, mode, 2, extra, tls)
        cpu_before = cpu_seconds_by_thread(process.pid)
        stop_probe, newcomers_ms = threading.Event(), []
        probe = threading.Thread(target=probe_new_clients,
                                 args=(port, path, stop_probe, newcomers_ms, tls, PROBE_PRIORITISED))
        probe.start()
        result = run_wrk(port, path, mode, duration, extra, tls)
        stop_probe.set()
        probe.join()
        cpu_after = cpu_seconds_by_thread(process.pid)
        result["newcomer_max"] = max(newcomers_ms) if newcomers_ms else None
        result["cpu_us"], result["interp_us"] = cpu_per_request_us(cpu_before, cpu_after,
                                                                   result["rps"] * duration)
        in_front = name.startswith("nginx-tls")
        result["rss_mb"], result["pss_mb"] = memory_mb(worker_pids(process.pid,
                                                                   include_root=name == "waitress" or in_front))
        return result
    finally:
        stop_session(process)


def stop_session(process, timeout=10):
    """TERM to the server's whole session (it was started with
    start_new_session), KILL if it is not gone within `timeout` seconds."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def target_dir():
    return os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))


def build(profile):
    subprocess.run(["cargo", "build", "--profile", profile, "--ignore-rust-version"], cwd=ROOT, check=True)
    return os.path.join(target_dir(), "x86_64-unknown-linux-gnu", profile, "ferrocorn")


def ensure_wrk():
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)


def make_venv(work, packages):
    """A venv under `work` with `packages` from PyPI; returns the venv and its
    site-packages."""
    venv = os.path.join(work, "venv")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q"] + packages, check=True)
    site_packages = subprocess.run([os.path.join(venv, "bin", "python"), "-c",
                                    "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip()
    return venv, site_packages


# The table's columns: title, key of a measurement, format, width.
COLUMNS = [
    ("req/s", "rps", "%.0f", 10),
    ("p50 ms", "p50", "%.2f", 9),
    ("p99 ms", "p99", "%.2f", 9),
    ("new max ms", "newcomer_max", "%.1f", 11),  # the worst round, not the median
    ("RSS MB", "rss_mb", "%.0f", 7),
    ("PSS MB", "pss_mb", "%.0f", 7),
    ("CPU us/req", "cpu_us", "%.1f", 11),
]
MEASURED = [key for _, key, _, _ in COLUMNS] + ["interp_us"]


def median_of(runs, key):
    """The median over rounds; for the longest newcomer wait, the worst round
    (the goal holds in every round, not in most)."""
    values = [run[key] for run in runs if run.get(key) is not None]
    if not values:
        return None
    return max(values) if key == "newcomer_max" else statistics.median(values)


def fmt(value, pattern="%.1f"):
    return "-" if value is None else pattern % value


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per measured wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per scenario (median kept)")
    parser.add_argument("--scenarios", default="", help="comma-separated subset, e.g. hello-ka-w1")
    parser.add_argument("--servers", default="", help="comma-separated subset of servers")
    parser.add_argument("--profile", default="release", choices=["release", "dist"],
                        help="cargo profile of the ferrocorn binary (release: the LTO build README says to "
                             "ship; dist is the same)")
    parser.add_argument("--binary", help="measure this ferrocorn binary instead of building one "
                                         "(e.g. the one bench/build_pgo.py prints)")
    parser.add_argument("--baseline", help="also measure this ferrocorn binary (an earlier build), as "
                                           "ferrocorn-baseline in the same interleaved rounds, and print "
                                           "ferrocorn's ratio to it")
    args = parser.parse_args()
    wanted = set(filter(None, args.scenarios.split(",")))
    wanted_servers = set(filter(None, args.servers.split(",")))
    with tempfile.TemporaryDirectory(prefix="ferrocorn-bench-") as work:
        binary = os.path.abspath(args.binary) if args.binary else build(args.profile)
        baseline = os.path.abspath(args.baseline) if args.baseline else None
        ensure_wrk()
        venv, site_packages = make_venv(work, PEERS)
        env = dict(os.environ, PYTHONPATH=APPS)
        for scenario, kind, workers, mode in scenarios():
            if wanted and scenario not in wanted:
                continue
            results = {}
            tls = scenario.startswith("tls-")
            app = APPS_BY_KIND[kind][0]

            def commands_on(port):
                commands = server_commands(binary, venv, site_packages, app, workers, port, work, kind, tls)
                if baseline:
                    commands["ferrocorn-baseline"] = server_commands(
                        baseline, venv, site_packages, app, workers, port, work, kind, tls)["ferrocorn"]
                return commands

            names = [name for name in commands_on(free_port())
                     if not wanted_servers or name in wanted_servers]
            for round_index in range(args.rounds):
                # Each server on a port of its own (a `close` run leaves its
                # TIME_WAIT sockets on its port) and in a rotating order, so
                # neither the previous server's leftovers nor the position in
                # the round favours one server.
                shift = round_index % max(len(names), 1)
                for name in names[shift:] + names[:shift]:
                    port = free_port()
                    outcome = measure(name, commands_on(port)[name], env, port, kind, mode, args.duration, tls)
                    if outcome:
                        results.setdefault(name, []).append(outcome)
            print("\n== %s (wrk -t1 -c64 -d%ds, %d round(s), median)" % (scenario, args.duration, args.rounds))
            print("%-18s " % "server" + " ".join("%*s" % (width, title) for title, _, _, width in COLUMNS)
                  + "  errors")
            medians = {}
            for name, runs in results.items():
                medians[name] = {key: median_of(runs, key) for key in MEASURED}
                print("%-18s " % name
                      + " ".join("%*s" % (width, fmt(medians[name][key], pattern)) for _, key, pattern, width in COLUMNS)
                      + "  " + "; ".join(r["errors"] for r in runs if r["errors"]))
            if not all(PROBE_PRIORITISED):
                print("new max ms: the probing client ran at normal priority (not root), so its own "
                      "wait for a CPU counts in it")
            # Every round's rate, to tell a difference from the rounds' spread.
            for name, runs in results.items():
                print("%-18s by round, req/s (CPU us/req): %s" % (name, " ".join(
                    "%.0f (%s)" % (run["rps"], fmt(run.get("cpu_us"))) for run in runs)))
            ours = medians.get("ferrocorn", {}).get("rps")
            if ours:
                ratios = ["%s %.2fx" % (name, ours / m["rps"]) for name, m in medians.items()
                          if not name.startswith("ferrocorn") and m["rps"]]
                if ratios:
                    print("ferrocorn / peer req/s: " + ", ".join(ratios))
                confined = medians.get("ferrocorn-sandbox", {}).get("rps")
                if confined:
                    print("ferrocorn --sandbox / ferrocorn req/s: %.3fx" % (confined / ours))
                counted = medians.get("ferrocorn-metrics", {}).get("rps")
                if counted:
                    print("ferrocorn --metrics-bind / ferrocorn req/s: %.3fx" % (counted / ours))
                before = medians.get("ferrocorn-baseline", {}).get("rps")
                if before:
                    print("ferrocorn / ferrocorn-baseline req/s: %.3fx" % (ours / before))
                forked = medians.get("ferrocorn-preload", {}).get("rps")
                if forked:
                    print("ferrocorn --preload / ferrocorn req/s: %.3fx" % (forked / ours))
                m = medians["ferrocorn"]
                if m["cpu_us"] and m["interp_us"]:
                    print("ferrocorn CPU us/req: interpreter threads %.1f, event loops and arbiter %.1f"
                          % (m["interp_us"], m["cpu_us"] - m["interp_us"]))
            sys.stdout.flush()
        if not wanted or "startup" in wanted:
            print("\n== startup: process start to the first hello-world response (10 launches)")
            print("ferrocorn median %.1f ms (target <= 150 ms)" % startup_ms(binary, env))


def startup_ms(binary, env, launches=10):
    """Median time from spawning `ferrocorn -w 1` to a 200 on a new connection."""
    times = []
    for _ in range(launches):
        port = free_port()
        started = time.monotonic()
        process = subprocess.Popen([binary, "-b", "127.0.0.1:%d" % port, "--log-level", "warning",
                                    "bench_apps:hello"], cwd=APPS, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = started + 10
            while time.monotonic() < deadline:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                        s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                        if s.recv(16).startswith(b"HTTP/1.1 200"):
                            times.append((time.monotonic() - started) * 1000)
                            break
                except OSError:
                    time.sleep(0.002)
        finally:
            process.terminate()
            process.wait()
    return statistics.median(times) if times else float("nan")


if __name__ == "__main__":
    main()
