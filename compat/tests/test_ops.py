"""Logging, metrics, command lines, scheduling and retries."""

import io
import json
import logging

import pytest

pk = pytest.mark.packages


@pk("structlog")
def test_structlog():
    """structlog renders JSON with bound context"""
    import structlog

    out = io.StringIO()
    structlog.configure(processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
                        logger_factory=structlog.PrintLoggerFactory(out))
    structlog.get_logger().bind(user="ada").info("login")
    assert json.loads(out.getvalue()) == {"user": "ada", "event": "login", "level": "info"}
    structlog.reset_defaults()


@pk("loguru")
def test_loguru():
    """loguru formats to a sink and catches an exception"""
    from loguru import logger

    out = io.StringIO()
    handler = logger.add(out, format="{level}|{message}")
    try:
        logger.info("hello {}", "ada")
        with logger.catch(reraise=False):
            1 / 0
    finally:
        logger.remove(handler)
    assert "INFO|hello ada" in out.getvalue() and "ZeroDivisionError" in out.getvalue()


@pk("prometheus-client")
def test_prometheus_client():
    """prometheus_client counts and exposes metrics"""
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

    registry = CollectorRegistry()
    Counter("jobs", "Jobs done", ["kind"], registry=registry).labels("a").inc(3)
    Histogram("latency_seconds", "Latency", registry=registry).observe(0.2)
    text = generate_latest(registry).decode()
    assert 'jobs_total{kind="a"} 3.0' in text and "latency_seconds_bucket" in text


@pk("rich", "markdown-it-py", "mdurl", "pygments")
def test_rich():
    """rich renders a table and markdown to a console"""
    from rich.console import Console
    from rich.markdown import Markdown
    from rich.table import Table

    console = Console(file=io.StringIO(), width=40, color_system=None)
    table = Table("name", "n")
    table.add_row("ada", "1")
    console.print(table)
    console.print(Markdown("# Head"))
    text = console.file.getvalue()
    assert "ada" in text and "Head" in text


@pk("click")
def test_click():
    """click parses options and runs a command (CliRunner)"""
    import click
    from click.testing import CliRunner

    @click.command()
    @click.option("--count", type=int, default=1)
    @click.argument("name")
    def hello(count, name):
        click.echo(" ".join(["hi " + name] * count))

    result = CliRunner().invoke(hello, ["--count", "2", "ada"])
    assert result.exit_code == 0 and result.output == "hi ada hi ada\n"


@pk("typer", "click", "shellingham", "rich", "annotated-doc", "pydantic")
def test_typer():
    """typer builds a CLI from type hints"""
    import typer
    from typer.testing import CliRunner

    app = typer.Typer()

    @app.command()
    def add(a: int, b: int = 2):
        print(a + b)

    result = CliRunner().invoke(app, ["3", "--b", "4"])
    assert result.exit_code == 0 and result.output.strip() == "7"


@pk("prompt-toolkit", "wcwidth")
def test_prompt_toolkit():
    """prompt_toolkit's document model and formatted text"""
    from prompt_toolkit.document import Document
    from prompt_toolkit.formatted_text import HTML, to_plain_text

    document = Document("hello world", cursor_position=6)
    assert document.get_word_under_cursor() == "world"
    assert to_plain_text(HTML("<b>bold</b>")) == "bold"


@pk("wcwidth")
def test_wcwidth():
    """wcwidth measures wide characters"""
    from wcwidth import wcswidth

    assert wcswidth("abc") == 3 and wcswidth("日本") == 4


@pk("colorama")
def test_colorama():
    """colorama's ANSI codes"""
    from colorama import Fore, Style

    assert Fore.RED == "\x1b[31m" and Style.RESET_ALL == "\x1b[0m"


@pk("tqdm")
def test_tqdm():
    """tqdm writes a progress bar"""
    from tqdm import tqdm

    out = io.StringIO()
    assert sum(tqdm(range(10), file=out, ncols=60)) == 45
    assert "10/10" in out.getvalue()


@pk("python-dotenv")
def test_dotenv(tmp_path):
    """python-dotenv reads a .env file with interpolation"""
    from dotenv import dotenv_values

    (tmp_path / ".env").write_text("A=1\nB=${A}2\n# c\nC='x y'\n")
    assert dotenv_values(tmp_path / ".env") == {"A": "1", "B": "12", "C": "x y"}


@pk("tenacity")
def test_tenacity():
    """tenacity retries until success"""
    from tenacity import retry, stop_after_attempt, wait_none

    calls = []

    @retry(stop=stop_after_attempt(3), wait=wait_none())
    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ValueError
        return "ok"

    assert flaky() == "ok" and len(calls) == 3


@pk("cachetools")
def test_cachetools():
    """cachetools' LRU and TTL caches"""
    from cachetools import LRUCache, TTLCache, cached

    lru = LRUCache(maxsize=2)
    lru["a"], lru["b"], lru["c"] = 1, 2, 3
    assert "a" not in lru
    calls = []

    @cached(TTLCache(maxsize=10, ttl=60))
    def square(x):
        calls.append(x)
        return x * x

    assert square(3) == square(3) == 9 and calls == [3]


@pk("schedule")
def test_schedule():
    """schedule plans and runs a job"""
    import schedule

    ran = []
    scheduler = schedule.Scheduler()
    job = scheduler.every(10).minutes.do(lambda: ran.append(1))
    assert job.next_run is not None
    scheduler.run_all()
    assert ran == [1]


@pk("apscheduler", "tzlocal")
def test_apscheduler():
    """APScheduler's background scheduler runs a job"""
    import threading

    from apscheduler.schedulers.background import BackgroundScheduler

    done = threading.Event()
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(done.set)
    scheduler.start()
    try:
        assert done.wait(10)
    finally:
        scheduler.shutdown()


@pk("vine")
def test_vine():
    """vine promises chain"""
    from vine import promise

    results = []
    p = promise(lambda x: x * 2)
    p.then(results.append)
    p(21)
    assert results == [42]


@pk("amqp")
def test_amqp_serialization():
    """amqp packs and unpacks AMQP method arguments (no broker here)"""
    from amqp.serialization import dumps, loads

    packed = dumps("BsF", [7, "queue", {"x": 1}])
    values, _ = loads("BsF", packed, 0)
    assert values == [7, "queue", {"x": 1}]


@pk("billiard")
def test_billiard():
    """billiard (Celery's multiprocessing fork) imports its process API"""
    import billiard

    assert billiard.cpu_count() >= 1 and billiard.current_process().name == "MainProcess"


@pk("pytest", "pluggy", "iniconfig")
def test_pluggy_iniconfig(tmp_path):
    """pluggy calls hooks; iniconfig parses an ini file"""
    import iniconfig
    import pluggy

    spec = pluggy.HookspecMarker("demo")
    impl = pluggy.HookimplMarker("demo")

    class Spec:
        @spec
        def greet(self, name):
            pass

    class Plugin:
        @impl
        def greet(self, name):
            return "hi " + name

    manager = pluggy.PluginManager("demo")
    manager.add_hookspecs(Spec)
    manager.register(Plugin())
    assert manager.hook.greet(name="ada") == ["hi ada"]
    (tmp_path / "a.ini").write_text("[s]\nk = v\n")
    assert iniconfig.IniConfig(tmp_path / "a.ini")["s"]["k"] == "v"


@pk("shellingham")
def test_shellingham():
    """shellingham looks for the parent shell (none is a valid answer)"""
    import shellingham

    try:
        name, path = shellingham.detect_shell()
        assert name and path
    except shellingham.ShellDetectionFailure:
        pass


@pk("types-python-dateutil")
def test_type_stubs():
    """types-python-dateutil's stubs are installed (importlib.metadata finds its .pyi files)"""
    import importlib.metadata

    files = importlib.metadata.distribution("types-python-dateutil").files
    assert any(str(f).endswith("parser/__init__.pyi") for f in files)


def test_logging_config():
    """the standard library's logging.config.dictConfig"""
    import logging.config

    logging.config.dictConfig({"version": 1, "handlers": {"m": {"class": "logging.handlers.MemoryHandler", "capacity": 10}}, "loggers": {"corpus": {"handlers": ["m"]}}})
    logging.getLogger("corpus").warning("x")
