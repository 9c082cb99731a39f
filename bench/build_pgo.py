#!/usr/bin/env python3
"""Builds the binary to ship with profile-guided optimisation (PGO).

    python3 bench/build_pgo.py            # about 15 minutes on 2 cores, cold
    python3 bench/run.py --binary PATH    # then measure what it printed

Three steps, each in its own cargo target directory under $CARGO_TARGET_DIR
(or target/) so that they never invalidate the ordinary builds:
1. pgo-generate/: the `dist` profile instrumented with -Cprofile-generate.
2. Training: the benchmark's scenarios (hello world and a Flask JSON route,
   1 and 2 workers, keep-alive and `Connection: close`, 1 MB responses and
   uploads) served by the instrumented binary under wrk on 127.0.0.1, with
   Flask from PyPI in a throw-away venv. Each worker writes its profile when
   it exits; llvm-profdata (rustup's llvm-tools, added if missing) merges them.
3. pgo/: the `dist` profile again, static as always, optimised with the
   merged profile. Its path is the last line printed.

The profile is named by its content hash: cargo fingerprints RUSTFLAGS, not
the file they name, so a new profile must change the flags to be used.
"""

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

import run

TARGET = "x86_64-unknown-linux-gnu"
# The instrumented build links the C runtime dynamically: instrumentation keeps
# every function alive, among them nix's termios wrappers, whose versioned
# glibc symbols (cfsetospeed@GLIBC_2.2.5) the static libc.a does not define.
# Function profiles match by name and control flow, not by how libc is linked.
STATIC = "-C target-feature=+crt-static"
TRAINING_SECONDS = 2


def cargo_dist(target_dir, rustflags):
    env = dict(os.environ, CARGO_TARGET_DIR=target_dir, RUSTFLAGS=rustflags)
    subprocess.run(["cargo", "build", "--profile", "dist", "--ignore-rust-version"], cwd=run.ROOT, env=env,
                   check=True)
    return os.path.join(target_dir, TARGET, "dist", "ferrocorn")


def llvm_profdata():
    """rustup's llvm-profdata: it must read the profile format of rustc's own LLVM."""
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True,
                             check=True).stdout.strip()
    tool = os.path.join(sysroot, "lib", "rustlib", TARGET, "bin", "llvm-profdata")
    if not os.path.exists(tool):
        subprocess.run(["rustup", "component", "add", "llvm-tools"], check=True)
    if not os.path.exists(tool):
        sys.exit("build_pgo: %s is missing after `rustup component add llvm-tools`" % tool)
    return tool


def train(binary):
    """Serves every benchmark scenario with the instrumented binary; its
    processes merge their counts into one file of the profile directory."""
    with tempfile.TemporaryDirectory(prefix="ferrocorn-pgo-") as work:
        run.ensure_wrk()
        venv, site_packages = run.make_venv(work, [run.FLASK])
        env = dict(os.environ, PYTHONPATH=run.APPS)
        for scenario, kind, workers, mode in run.scenarios():
            port = run.free_port()
            command = run.server_commands(binary, venv, site_packages, run.APPS_BY_KIND[kind][0], workers,
                                          port)["ferrocorn"]
            result = run.measure("ferrocorn", command, env, port, kind, mode, TRAINING_SECONDS)
            if result is None:
                sys.exit("build_pgo: the instrumented binary did not serve %s" % scenario)
            print("trained %-16s %8.0f req/s" % (scenario, result["rps"]), flush=True)


def main():
    base = run.target_dir()
    profile_dir = os.path.join(base, "pgo-profiles")
    shutil.rmtree(profile_dir, ignore_errors=True)
    os.makedirs(profile_dir)
    profdata_tool = llvm_profdata()
    instrumented = cargo_dist(os.path.join(base, "pgo-generate"), "-Cprofile-generate=" + profile_dir)
    train(instrumented)
    raw = glob.glob(os.path.join(profile_dir, "*.profraw"))
    if not raw:
        sys.exit("build_pgo: training wrote no profiles to %s" % profile_dir)
    merged = os.path.join(profile_dir, "merged.profdata")
    subprocess.run([profdata_tool, "merge", "-o", merged] + raw, check=True)
    with open(merged, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    for stale in glob.glob(os.path.join(base, "pgo-*.profdata")):
        os.remove(stale)
    named = os.path.join(base, "pgo-%s.profdata" % digest)
    shutil.copyfile(merged, named)
    binary = cargo_dist(os.path.join(base, "pgo"), "%s -Cprofile-use=%s" % (STATIC, named))
    print(binary)


if __name__ == "__main__":
    main()
