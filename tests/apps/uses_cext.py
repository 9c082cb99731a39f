from cext_pkg import fast  # noqa: F401


def application(environ, start_response):
    return []
