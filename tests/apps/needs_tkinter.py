import tkinter  # noqa: F401  (needs _tkinter, which this build leaves out)


def application(environ, start_response):
    return []
