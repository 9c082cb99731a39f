"""bench/soak.py's app: the benchmark's apps behind one callable, by path."""

import bench_apps
import flask_json


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/flask":
        environ["PATH_INFO"] = "/"
        return flask_json.app(environ, start_response)
    if path == "/big":
        return bench_apps.big(environ, start_response)
    return bench_apps.hello(environ, start_response)
