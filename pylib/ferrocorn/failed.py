"""The app a ``--reload`` worker serves while the real one fails to import.

Every request gets a 500 whose body is the load error (as Gunicorn's reloader
serves a syntax error), so a developer sees why at once instead of a request
that hangs until the next edit. Development only: the body shows a traceback.
"""


def app_for(report):
    body = (
        "500 Internal Server Error: the app failed to load.\n"
        "ferrocorn --reload starts fresh workers when a source file changes.\n\n"
        + report
    ).encode("utf-8", "replace")
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
    ]

    def failed_app(environ, start_response):
        start_response("500 Internal Server Error", list(headers))
        return [body]

    return failed_app
