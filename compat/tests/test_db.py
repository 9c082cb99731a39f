"""ORMs and database drivers, against SQLite and the real PostgreSQL,
MariaDB and Redis servers compat/run.py starts."""

import json
import ssl
import uuid

import pytest

pk = pytest.mark.packages


def _table():
    return "t_" + uuid.uuid4().hex[:12]


@pk("sqlalchemy")
def test_sqlalchemy_orm_sqlite():
    """SQLAlchemy 2.1's ORM: declarative models, a relationship, a select"""
    from sqlalchemy import ForeignKey, create_engine, select
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

    class Base(DeclarativeBase):
        pass

    class Author(Base):
        __tablename__ = "author"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str]
        books: Mapped[list["Book"]] = relationship(back_populates="author")

    class Book(Base):
        __tablename__ = "book"
        id: Mapped[int] = mapped_column(primary_key=True)
        title: Mapped[str]
        author_id: Mapped[int] = mapped_column(ForeignKey("author.id"))
        author: Mapped[Author] = relationship(back_populates="books")

    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(Author(name="Ada", books=[Book(title="Notes")]))
        session.commit()
        row = session.execute(select(Book.title, Author.name).join(Book.author)).one()
    assert tuple(row) == ("Notes", "Ada")


@pk("pg8000", "scramp", "asn1crypto", "python-dateutil")
def test_pg8000_tls(postgres):
    """pg8000 over TLS (SSLContext.wrap_socket, the corpus CA) with a SCRAM password"""
    import pg8000.native

    context = ssl.create_default_context(cafile=postgres["cafile"])
    conn = pg8000.native.Connection(
        postgres["user"], host=postgres["host"], port=postgres["port"],
        password=postgres["password"], database=postgres["database"], ssl_context=context,
    )
    try:
        assert conn.run("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") == [[True]]
        assert conn.run("SELECT :a::int + 1", a=41) == [[42]]
    finally:
        conn.close()


@pk("sqlalchemy", "pg8000")
def test_sqlalchemy_postgres(postgres):
    """SQLAlchemy 2.1 Core and ORM over pg8000 against PostgreSQL"""
    from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select

    url = "postgresql+pg8000://{user}:{password}@{host}:{port}/{database}".format(**postgres)
    engine = create_engine(url, connect_args={"ssl_context": ssl.create_default_context(cafile=postgres["cafile"])})
    meta = MetaData()
    table = Table(_table(), meta, Column("id", Integer, primary_key=True), Column("name", String(20)))
    meta.create_all(engine)
    try:
        with engine.begin() as conn:
            conn.execute(insert(table), [{"name": "a"}, {"name": "b"}])
        with engine.connect() as conn:
            assert conn.execute(select(table.c.name).order_by(table.c.id)).scalars().all() == ["a", "b"]
    finally:
        meta.drop_all(engine)
        engine.dispose()


@pk("psycopg")
def test_psycopg_postgres(postgres):
    """psycopg 3 in pure-Python mode (libpq through ctypes) against PostgreSQL"""
    import subprocess

    from test_web import _python

    # In a process of its own: the libpq it loads may take the process down.
    code = f"""
import psycopg
settings = {postgres!r}
with psycopg.connect(host=settings["host"], port=settings["port"], user=settings["user"],
                     password=settings["password"], dbname=settings["database"], sslmode="disable") as conn:
    print(conn.execute("SELECT %s::int * 2", (21,)).fetchone())
"""
    result = subprocess.run(_python() + ["-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-1500:]}"
    assert result.stdout.strip() == "(42,)"


@pk("alembic", "mako", "sqlalchemy")
def test_alembic(tmp_path):
    """Alembic applies a migration with its Operations API"""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    from sqlalchemy import Column, Integer, String, create_engine, inspect

    engine = create_engine("sqlite:///" + str(tmp_path / "m.db"))
    with engine.begin() as conn:
        ops = Operations(MigrationContext.configure(conn))
        ops.create_table("account", Column("id", Integer, primary_key=True))
        ops.add_column("account", Column("email", String(100)))
    assert [c["name"] for c in inspect(engine).get_columns("account")] == ["id", "email"]


@pk("peewee")
def test_peewee():
    """peewee models on SQLite"""
    import peewee

    db = peewee.SqliteDatabase(":memory:")

    class Item(peewee.Model):
        name = peewee.CharField()

        class Meta:
            database = db

    db.create_tables([Item])
    Item.create(name="x")
    assert [i.name for i in Item.select()] == ["x"]


@pk("pony")
def test_pony():
    """Pony ORM entities and a generator query on SQLite"""
    from pony import orm

    db = orm.Database()

    class Person(db.Entity):
        name = orm.Required(str)
        age = orm.Required(int)

    db.bind(provider="sqlite", filename=":memory:")
    db.generate_mapping(create_tables=True)
    with orm.db_session:
        Person(name="a", age=30)
        Person(name="b", age=10)
        assert orm.select(p.name for p in Person if p.age > 18)[:] == ["a"]


@pk("pymysql")
def test_pymysql(mariadb):
    """PyMySQL against MariaDB: a table, parameters, a transaction"""
    import pymysql

    conn = pymysql.connect(**mariadb)
    table = _table()
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, name VARCHAR(20))")
            cur.executemany(f"INSERT INTO {table} VALUES (%s, %s)", [(1, "a"), (2, "é")])
            conn.commit()
            cur.execute(f"SELECT name FROM {table} ORDER BY id")
            assert cur.fetchall() == (("a",), ("é",))
            cur.execute(f"DROP TABLE {table}")
    finally:
        conn.close()


@pk("django", "pymysql")
def test_django_mariadb(mariadb):
    """Django's MySQL backend over PyMySQL (install_as_MySQLdb) migrates against MariaDB"""
    import subprocess

    from test_web import _python

    database = "d_" + uuid.uuid4().hex[:10]
    code = f"""
import pymysql
pymysql.version_info = (2, 2, 1, "final", 0)
pymysql.install_as_MySQLdb()
conn = pymysql.connect(**{mariadb!r})
conn.cursor().execute("CREATE DATABASE {database}")
import django
from django.conf import settings
settings.configure(
    SECRET_KEY="corpus", INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes"],
    DATABASES={{"default": {{"ENGINE": "django.db.backends.mysql", "NAME": "{database}",
        "USER": {mariadb['user']!r}, "PASSWORD": {mariadb['password']!r},
        "HOST": {mariadb['host']!r}, "PORT": {mariadb['port']}}}}},
)
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth.models import Group
Group.objects.create(name="editors")
assert list(Group.objects.values_list("name", flat=True)) == ["editors"]
conn.cursor().execute("DROP DATABASE {database}")
print("ok")
"""
    result = subprocess.run(_python() + ["-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")


@pk("redis")
def test_redis(redis_url):
    """redis-py: strings, a pipeline, pub/sub"""
    import redis

    client = redis.Redis.from_url(redis_url)
    key = _table()
    pipe = client.pipeline()
    pipe.set(key, 1).incrby(key, 41).get(key)
    assert pipe.execute()[-1] == b"42"
    pubsub = client.pubsub()
    pubsub.subscribe(key + "c")
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    client.publish(key + "c", "hi")
    message = pubsub.get_message(timeout=5)
    assert message and message["data"] == b"hi"
    pubsub.close()
    client.delete(key)


@pk("rq", "redis")
def test_rq(redis_url):
    """rq enqueues a job on Redis and a SimpleWorker runs it"""
    import redis
    from rq import Queue, SimpleWorker

    connection = redis.Redis.from_url(redis_url)
    queue = Queue(_table(), connection=connection)
    job = queue.enqueue("json.dumps", {"a": 1})
    SimpleWorker([queue], connection=connection).work(burst=True)
    job.refresh()
    assert job.get_status() == "finished" and job.return_value() == '{"a": 1}'


@pk("kombu", "vine", "amqp")
def test_kombu_redis(redis_url):
    """kombu's SimpleQueue over the Redis transport"""
    from kombu import Connection

    with Connection(redis_url) as conn:
        queue = conn.SimpleQueue(_table())
        queue.put({"n": 1})
        message = queue.get(timeout=5)
        assert message.payload == {"n": 1}
        message.ack()
        queue.close()


@pk("celery", "kombu", "billiard", "vine", "click-didyoumean", "click-repl", "click-plugins", "prompt-toolkit", "wcwidth", "python-dateutil", "tzlocal")
def test_celery(redis_url):
    """Celery defines a task and runs it eagerly with a Redis broker configured"""
    from celery import Celery

    app = Celery("corpus", broker=redis_url, backend=redis_url)
    app.conf.task_always_eager = True

    @app.task
    def add(a, b):
        return a + b

    assert add.delay(2, 3).get(timeout=5) == 5


@pk("dj-database-url")
def test_dj_database_url():
    """dj-database-url turns a URL into Django settings"""
    import dj_database_url

    config = dj_database_url.parse("postgres://u:p@db.example:5433/app")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db.example", 5433, "app")


@pk("sqlparse")
def test_sqlparse():
    """sqlparse formats and splits SQL"""
    import sqlparse

    assert sqlparse.split("select 1; select 2;") == ["select 1;", "select 2;"]
    assert sqlparse.format("select a from b", keyword_case="upper") == "SELECT a FROM b"


FLASK_SQLALCHEMY_APP = """
import os, ssl
from flask import Flask, jsonify, request
from flask_sqlalchemy import SQLAlchemy

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
    "connect_args": {"ssl_context": ssl.create_default_context(cafile=os.environ["DATABASE_CA"])}}
db = SQLAlchemy(app)

class Note(db.Model):
    __tablename__ = os.environ["NOTES_TABLE"]
    id = db.Column(db.Integer, primary_key=True)
    text = db.Column(db.String(200), nullable=False)

with app.app_context():
    db.create_all()

@app.post("/notes")
def add():
    db.session.add(Note(text=request.get_json()["text"]))
    db.session.commit()
    return jsonify(count=db.session.query(Note).count()), 201

@app.get("/notes")
def notes():
    return jsonify([n.text for n in db.session.execute(db.select(Note).order_by(Note.id)).scalars()])
"""


@pk("flask-sqlalchemy", "flask", "sqlalchemy", "pg8000")
def test_flask_sqlalchemy_postgres_served(postgres, tmp_path):
    """A Flask + SQLAlchemy 2.1 + pg8000 app served by ferrocorn (2 workers) against PostgreSQL over TLS"""
    import os
    import subprocess
    import urllib.request

    from services import free_port, wait_for_port  # compat/services.py

    (tmp_path / "notes_app.py").write_text(FLASK_SQLALCHEMY_APP)
    port, table = free_port(), _table()
    env = dict(os.environ, NOTES_TABLE=table, DATABASE_CA=postgres["cafile"],
               DATABASE_URL="postgresql+pg8000://{user}:{password}@{host}:{port}/{database}".format(**postgres))
    server = subprocess.Popen(
        [os.environ["COMPAT_FERROCORN"], "-b", f"127.0.0.1:{port}", "-w", "2", "--chdir", str(tmp_path),
         "--pythonpath", os.environ["COMPAT_SITE"], "notes_app:app"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, server, "ferrocorn")
        url = f"http://127.0.0.1:{port}/notes"
        for text in ("first", "second"):
            request = urllib.request.Request(url, data=json.dumps({"text": text}).encode(),
                                             headers={"Content-Type": "application/json"}, method="POST")
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 201
        with urllib.request.urlopen(url, timeout=30) as response:
            assert json.load(response) == ["first", "second"]
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    assert server.returncode in (0, -15), errors.decode()[-2000:]
