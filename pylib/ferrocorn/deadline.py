"""``--request-timeout``: the exception raised inside a request that ran too long."""


class RequestTimeout(BaseException):
    """Raised in the app's code when its request passed ``--request-timeout``.

    A BaseException, like KeyboardInterrupt: ``except Exception`` handlers
    (a framework's error page among them) let it through, so the request
    ends and the server answers 503. Code that swallows it anyway is cut off
    a little later: its worker is replaced.
    """
