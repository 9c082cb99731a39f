"""Web frameworks and their parts: each serves a request through its own
test client, the way an app's test suite would."""

import json
import os

import pytest

pk = pytest.mark.packages


@pk("flask", "werkzeug", "jinja2", "itsdangerous", "click", "blinker", "markupsafe")
def test_flask():
    """Flask routes, a Jinja2 template, a signed session cookie, JSON"""
    from flask import Flask, jsonify, render_template_string, session

    app = Flask(__name__)
    app.secret_key = "corpus"

    @app.route("/hello/<name>")
    def hello(name):
        session["seen"] = name
        return render_template_string("<p>{{ name }}</p>", name=name)

    @app.route("/seen")
    def seen():
        return jsonify(seen=session.get("seen"))

    client = app.test_client()
    assert client.get("/hello/<b>").data == b"<p>&lt;b&gt;</p>"
    assert client.get("/seen").get_json() == {"seen": "<b>"}


@pk("flask-login", "flask")
def test_flask_login():
    """Flask-Login logs a user in and guards a view"""
    from flask import Flask
    from flask_login import LoginManager, UserMixin, login_required, login_user

    app = Flask(__name__)
    app.secret_key = "corpus"
    manager = LoginManager(app)

    class User(UserMixin):
        id = "7"

    manager.user_loader(lambda uid: User() if uid == "7" else None)

    @app.route("/login")
    def login():
        login_user(User())
        return "in"

    @app.route("/private")
    @login_required
    def private():
        return "secret"

    client = app.test_client()
    assert client.get("/private").status_code == 401
    client.get("/login")
    assert client.get("/private").data == b"secret"


@pk("flask-wtf", "wtforms")
def test_flask_wtf():
    """Flask-WTF validates a form with a CSRF token"""
    from flask import Flask
    from flask_wtf import FlaskForm
    from wtforms import IntegerField
    from wtforms.validators import NumberRange

    app = Flask(__name__)
    app.secret_key = "corpus"

    class Form(FlaskForm):
        age = IntegerField(validators=[NumberRange(min=0, max=150)])

    with app.test_request_context(method="POST", data={"age": "200"}):
        app.config["WTF_CSRF_ENABLED"] = False
        form = Form()
        assert not form.validate()
        assert "age" in form.errors
    with app.test_request_context(method="POST", data={"age": "30"}):
        assert Form().validate()


@pk("flask-sqlalchemy", "sqlalchemy")
def test_flask_sqlalchemy(tmp_path):
    """Flask-SQLAlchemy models on SQLite"""
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + str(tmp_path / "app.db")
    db = SQLAlchemy(app)

    class Note(db.Model):
        id = db.Column(db.Integer, primary_key=True)
        text = db.Column(db.String(80))

    with app.app_context():
        db.create_all()
        db.session.add(Note(text="hi"))
        db.session.commit()
        assert db.session.execute(db.select(Note.text)).scalar_one() == "hi"


@pk("bottle")
def test_bottle():
    """Bottle routes a WSGI request"""
    import io

    import bottle

    app = bottle.Bottle()

    @app.route("/add/<a:int>/<b:int>")
    def add(a, b):
        return {"sum": a + b}

    out = {}
    body = b"".join(
        app(
            {"REQUEST_METHOD": "GET", "PATH_INFO": "/add/2/3", "wsgi.input": io.BytesIO(), "SERVER_NAME": "x", "SERVER_PORT": "80", "wsgi.url_scheme": "http"},
            lambda status, headers, exc_info=None: out.setdefault("status", status),
        )
    )
    assert out["status"].startswith("200") and json.loads(body) == {"sum": 5}


@pk("falcon")
def test_falcon():
    """Falcon resource through falcon.testing"""
    import falcon
    import falcon.testing

    class Things:
        def on_get(self, req, resp):
            resp.media = {"q": req.get_param("q")}

    app = falcon.App()
    app.add_route("/things", Things())
    result = falcon.testing.TestClient(app).simulate_get("/things", params={"q": "x"})
    assert result.json == {"q": "x"}


@pk("django", "asgiref", "sqlparse")
def test_django_sqlite_defaults(tmp_path):
    """Django with startproject's database settings (SQLite, detect_types) migrates and serves"""
    import subprocess
    import sys

    code = f"""
import django
from django.conf import settings
settings.configure(
    DEBUG=False, SECRET_KEY="corpus", ALLOWED_HOSTS=["testserver"], ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions"],
    DATABASES={{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": {str(tmp_path / 'db.sqlite3')!r}}}}},
    USE_TZ=True,
)
django.setup()
from django.core.management import call_command
from django.http import JsonResponse
from django.urls import path
from django.contrib.auth.models import User
def users(request):
    return JsonResponse({{"users": list(User.objects.values_list("username", flat=True))}})
urlpatterns = [path("users", users)]
call_command("migrate", verbosity=0)
User.objects.create_user("ada", password="pw")
from django.test import Client
response = Client().get("/users")
assert response.status_code == 200, response.status_code
assert response.json() == {{"users": ["ada"]}}, response.json()
print("ok")
"""
    # Django's settings are process-wide: a fresh interpreter per test.
    result = subprocess.run(_python() + ["-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")


def _python():
    """The interpreter running the corpus, as a command (CPython, or
    `ferrocorn run` with the same path)."""
    return json.loads(os.environ.get("COMPAT_PYTHON", "null")) or [__import__("sys").executable]


@pk("pyramid", "webob", "setuptools", "legacy-cgi", "hupper", "plaster", "plaster-pastedeploy", "pastedeploy", "translationstring", "venusian", "zope.interface", "zope.deprecation")
def test_pyramid():
    """Pyramid configures a route and view and answers through WebOb"""
    from pyramid.config import Configurator
    from pyramid.response import Response
    from webob import Request

    def hello(request):
        return Response(json_body={"name": request.matchdict["name"]})

    with Configurator() as config:
        config.add_route("hello", "/hello/{name}")
        config.add_view(hello, route_name="hello")
        app = config.make_wsgi_app()
    response = Request.blank("/hello/ada").get_response(app)
    assert response.status_code == 200 and response.json == {"name": "ada"}


@pk("starlette", "anyio", "sniffio", "httpx", "httpcore", "h11", "idna")
def test_starlette():
    """Starlette's TestClient (anyio + httpx) drives an ASGI app"""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    async def home(request):
        return JSONResponse({"hello": request.query_params.get("who")})

    app = Starlette(routes=[Route("/", home)])
    with TestClient(app) as client:
        assert client.get("/?who=ada").json() == {"hello": "ada"}


@pk("asgiref")
def test_asgiref():
    """asgiref's sync_to_async and async_to_sync round trip"""
    from asgiref.sync import async_to_sync, sync_to_async

    def double(x):
        return 2 * x

    async def run():
        return await sync_to_async(double)(21)

    assert async_to_sync(run)() == 42


@pk("whitenoise")
def test_whitenoise(tmp_path):
    """WhiteNoise serves a static file with caching headers"""
    import io

    from whitenoise import WhiteNoise

    (tmp_path / "app.css").write_text("body{}")
    app = WhiteNoise(lambda e, s: [b"app"], root=str(tmp_path), prefix="static/")
    got = {}

    def start(status, headers, exc_info=None):
        got["status"], got["headers"] = status, dict(headers)

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/static/app.css", "wsgi.input": io.BytesIO(), "QUERY_STRING": ""}
    body = b"".join(app(environ, start))
    assert got["status"].startswith("200") and body == b"body{}"
    assert "Last-Modified" in got["headers"]


@pk("python-multipart")
def test_python_multipart():
    """python-multipart parses a multipart/form-data body"""
    from python_multipart import parse_form

    boundary = "XyZ"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"t.txt\"\r\n"
            f"Content-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n").encode()
    fields, files = {}, {}
    parse_form(
        {"Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(len(body))},
        __import__("io").BytesIO(body),
        lambda f: fields.__setitem__(f.field_name, f.value),
        lambda f: files.__setitem__(f.field_name, f.file_object.read() if f.file_object.seek(0) == 0 else b""),
    )
    assert fields == {b"a": b"1"} and files == {b"f": b"hello"}
