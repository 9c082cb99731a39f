import ssl  # noqa: F401


def application(environ, start_response):
    return []
