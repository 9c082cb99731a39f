"""Fixtures for the compatibility corpus: the real services compat/run.py
started (PostgreSQL, MariaDB, Redis, an HTTPS server with its own CA), and
a record of every test's outcome and the packages it covers, which run.py
compares between CPython and ferrocorn."""

import json
import os
import sys

import pytest

# compat/services.py: a test that starts a server of its own uses its helpers.
sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pytest_configure(config):
    config.addinivalue_line("markers", "packages(*names): the distributions a test exercises")
    config._compat_results = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    results = item.config._compat_results
    marker = item.get_closest_marker("packages")
    entry = results.setdefault(
        item.name,
        {
            "packages": list(marker.args) if marker else [],
            "doc": (item.obj.__doc__ or "").strip().splitlines()[0] if item.obj.__doc__ else "",
            "outcome": "passed",
            "error": "",
        },
    )
    if report.failed or (report.skipped and report.when != "teardown"):
        if entry["outcome"] == "passed":
            entry["outcome"] = "skipped" if report.skipped else "failed"
            text = str(report.longrepr or "")
            errors = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
            entry["error"] = (errors[-1] if errors else (text.strip().splitlines() or [""])[-1])[:300]

def pytest_unconfigure(config):
    path = os.environ.get("COMPAT_RESULTS")
    if path:
        with open(path, "w") as out:
            json.dump(config._compat_results, out, indent=1, sort_keys=True)


def _service(name):
    value = os.environ.get(name)
    if not value:
        pytest.skip(f"{name} is not set: run the corpus through compat/run.py")
    return value


@pytest.fixture
def postgres():
    """Connection settings of the throw-away PostgreSQL server (SCRAM
    passwords, TLS on with the corpus CA's certificate)."""
    return json.loads(_service("COMPAT_POSTGRES"))


@pytest.fixture
def mariadb():
    return json.loads(_service("COMPAT_MARIADB"))


@pytest.fixture
def redis_url():
    return _service("COMPAT_REDIS_URL")


@pytest.fixture
def https():
    """The local HTTPS server (ferrocorn over TLS, serving
    compat/https_app.py) and the CA file that signed its certificate."""
    return {"url": _service("COMPAT_HTTPS_URL"), "cafile": _service("COMPAT_CA_FILE")}
