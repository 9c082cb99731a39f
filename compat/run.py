#!/usr/bin/env python3
"""The compatibility corpus: the smoke tests in compat/tests, over the
pinned wheels of compat/requirements*.txt, run on CPython (the baseline)
and on ferrocorn (`ferrocorn run -m pytest`), against real PostgreSQL,
MariaDB, Redis and HTTPS servers started here.

A test that passes on CPython must pass on ferrocorn, or be listed in
compat/known-failures.txt with its one-line reason; a listed test that now
passes is an error too, so the list cannot go stale. The table in
compat/README.md is made from the results (--write-table) and checked
against them (--check-table).

    python3 compat/run.py --binary target/x86_64-unknown-linux-gnu/release/ferrocorn
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import services

HERE = Path(__file__).resolve().parent
REQUIREMENTS = [HERE / "requirements.txt", HERE / "requirements-fallback.txt"]
PURE_FLAGS = ["--platform", "any", "--implementation", "py", "--abi", "none", "--python-version", "3.11"]
TABLE_START, TABLE_END = "<!-- corpus table: begin -->", "<!-- corpus table: end -->"
RUN_SECONDS = 1200


def normalized(name):
    """A distribution's name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned():
    """{distribution: version} of every requirement file."""
    found = {}
    for path in REQUIREMENTS:
        for name, version in re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", path.read_text(), re.M):
            found[normalized(name)] = version
    return found


def install_site(cache):
    """Installs the pinned wheels (hash-checked) once per set of pins into a
    directory both interpreters import from."""
    key = hashlib.sha256(b"".join(p.read_bytes() for p in REQUIREMENTS)).hexdigest()[:16]
    site = Path(cache) / f"compat-site-{key}"
    if (site / ".complete").exists():
        return site
    staging = Path(tempfile.mkdtemp(prefix="compat-site-", dir=cache))
    # Two targets merged: pip --target will not add to a namespace package
    # (zope) that another invocation created.
    for index, (requirements, flags) in enumerate(zip(REQUIREMENTS, (PURE_FLAGS, []))):
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--require-hashes",
             "--only-binary=:all:", "--target", str(staging / str(index)), *flags, "-r", str(requirements)],
            check=True,
        )
        shutil.copytree(staging / str(index), staging / "site", dirs_exist_ok=True)
    (staging / "site" / ".complete").touch()
    shutil.rmtree(site, ignore_errors=True)
    (staging / "site").rename(site)
    shutil.rmtree(staging)
    return site


def run_suite(name, command, env, results):
    print(f"== {name}: {' '.join(command)}", flush=True)
    env = dict(env, COMPAT_RESULTS=str(results))
    completed = subprocess.run(command, env=env, cwd=HERE / "tests", timeout=RUN_SECONDS,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail = completed.stdout.strip().splitlines()[-3:]
    print("\n".join("   " + line for line in tail), flush=True)
    if not results.exists():
        print(completed.stdout[-5000:])
        raise SystemExit(f"compat: the {name} run wrote no results (exit {completed.returncode})")
    return json.loads(results.read_text())


def compile_failures(command, site):
    """{file: error} of the files below `site` that `command` (an
    interpreter) cannot compile (compile_all.py)."""
    completed = subprocess.run(command + [str(HERE / "compile_all.py"), str(site)], timeout=RUN_SECONDS,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"compat: compile_all.py failed under {command[0]} (exit {completed.returncode})")
    return dict(line.split("\t", 1) for line in completed.stdout.splitlines() if "\t" in line)


def known_failures():
    known = {}
    for line in (HERE / "known-failures.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            test, reason = line.split(":", 1)
            known[test.strip()] = reason.strip()
    return known


def compare(cpython, ferrocorn, known):
    """Problems, one line each: what must be fixed before the corpus passes."""
    problems = []
    for test, base in sorted(cpython.items()):
        ours = ferrocorn.get(test, {"outcome": "missing", "error": "did not run"})
        if base["outcome"] != "passed":
            problems.append(f"{test}: fails on CPython too ({base['error']}): the test is wrong")
        elif ours["outcome"] == "passed" and test in known:
            problems.append(f"{test}: passes now: remove it from compat/known-failures.txt")
        elif ours["outcome"] != "passed" and test not in known:
            problems.append(f"{test}: {ours['outcome']} on ferrocorn: {ours['error']}")
    for test in sorted(set(known) - set(cpython)):
        problems.append(f"{test}: listed in compat/known-failures.txt but no such test")
    return problems


def table(cpython, ferrocorn, known, versions):
    """The Markdown table of compat/README.md: a row per distribution. A
    test's first package is what it tests, the others what that uses: a
    package fails when a test of its own fails, and one only used by others
    counts as working when one of those passes."""
    rows = {}
    for test, base in cpython.items():
        for position, package in enumerate(base["packages"]):
            row = rows.setdefault(normalized(package), {"name": package, "own": [], "used_by": []})
            row["own" if position == 0 else "used_by"].append(test)
    passed = lambda test: ferrocorn.get(test, {}).get("outcome") == "passed"  # noqa: E731
    reason = lambda test: known.get(test) or ferrocorn.get(test, {}).get("error", "")  # noqa: E731
    lines = ["| package | version | on ferrocorn | smoke tests |", "|---|---|---|---|"]
    for key in sorted(rows):
        row = rows[key]
        failing = [t for t in row["own"] if not passed(t)]
        if failing:
            status = "**fails**: " + "; ".join(sorted({reason(t) for t in failing}))
        elif row["own"] or any(passed(t) for t in row["used_by"]):
            status = "works"
        else:
            status = "unknown: only used by " + ", ".join(f"`{t}`" for t in sorted(row["used_by"])) + ", which fails"
        tests = ", ".join(f"`{t}`" for t in sorted(row["own"] + row["used_by"]))
        lines.append(f"| {row['name']} | {versions.get(key, '')} | {status} | {tests} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True, help="the ferrocorn binary to test")
    parser.add_argument("--cache", default=os.environ.get("CARGO_TARGET_DIR") or str(Path.home() / ".cache"),
                        help="where the installed wheels are kept between runs")
    parser.add_argument("--write-table", action="store_true", help="rewrite the table in compat/README.md")
    parser.add_argument("--check-table", action="store_true", help="fail if compat/README.md's table differs")
    args = parser.parse_args()
    binary = str(Path(args.binary).resolve())
    Path(args.cache).mkdir(parents=True, exist_ok=True)
    site = install_site(args.cache)
    versions = pinned()
    uncovered = set(versions)
    with tempfile.TemporaryDirectory(prefix="compat-") as work:
        os.chmod(work, 0o755)  # the database servers run as their own users
        with services.all_services(work, binary) as env:
            env = dict(os.environ, **env, COMPAT_FERROCORN=binary, COMPAT_SITE=str(site))
            pytest_args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "console_output_style=classic", "."]
            # -S: the baseline sees the pinned wheels only, not the packages
            # this CPython has installed (pip's setuptools would hide a gap).
            cpython_cmd = [sys.executable, "-S"]
            cpython_env = dict(env, PYTHONPATH=str(site), COMPAT_PYTHON=json.dumps(cpython_cmd))
            cpython = run_suite("CPython", cpython_cmd + pytest_args, cpython_env, Path(work) / "cpython.json")
            ours_cmd = [binary, "run", "--pythonpath", str(site)]
            ours_env = dict(env, COMPAT_PYTHON=json.dumps(ours_cmd))
            ferrocorn = run_suite("ferrocorn", ours_cmd + pytest_args, ours_env, Path(work) / "ferrocorn.json")
    # Every file of every wheel must compile where CPython compiles it: the
    # compiler's bugs show here before an app imports the file.
    cpython_refused = compile_failures([sys.executable, "-S"], site)
    ours_refused = compile_failures([binary, "run"], site)
    print(f"compile: {sum(1 for _ in site.rglob('*.py'))} files; CPython refuses {len(cpython_refused)}, "
          f"ferrocorn {len(ours_refused)}")
    known = known_failures()
    for result in cpython.values():
        uncovered -= {normalized(p) for p in result["packages"]}
    problems = compare(cpython, ferrocorn, known)
    problems += [f"compile {path}: {error}" for path, error in sorted(ours_refused.items())
                 if path not in cpython_refused]
    problems += [f"{p}: pinned but no test names it in @packages" for p in sorted(uncovered)]
    passed = sum(1 for t in cpython if ferrocorn.get(t, {}).get("outcome") == "passed")
    print(f"corpus: {len(versions)} distributions, {len(cpython)} tests; "
          f"{passed} pass on ferrocorn, {len(known)} known failures")
    rendered = table(cpython, ferrocorn, known, versions)
    readme = HERE / "README.md"
    text = readme.read_text()
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    if args.write_table:
        readme.write_text(text[:start] + "\n" + rendered + "\n" + text[end:])
    elif args.check_table and text[start:end].strip() != rendered.strip():
        problems.append("compat/README.md's table differs from this run: python3 compat/run.py --write-table")
    for problem in problems:
        print("FAIL " + problem)
    expected = [t for t in known if t in cpython and ferrocorn.get(t, {}).get("outcome") != "passed"]
    # The closing line CI reads: a failure is a problem above, a skip a
    # known failure that still fails.
    print(f"compat: {passed} passed, {len(problems)} failed, {len(expected)} skipped")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
