"""Where RustPython 0.6 in a static binary differs from CPython in ways apps
meet, put right when an interpreter starts."""

import pwd


def _key_error_when_missing(lookup):
    """``pwd`` raises KeyError for an entry it cannot find (CPython's
    contract, which ``os.path.expanduser`` relies on); RustPython raises the
    C library's error instead when there is no /etc/passwd, as in an empty
    root, so ``import zoneinfo`` (via sysconfig's ``~``) failed there."""

    def wrapped(key):
        try:
            return lookup(key)
        except OSError as error:
            raise KeyError("%s(%r): no such entry (%s)" % (lookup.__name__, key, error)) from None

    wrapped.__name__ = lookup.__name__
    wrapped.__doc__ = lookup.__doc__
    return wrapped


pwd.getpwuid = _key_error_when_missing(pwd.getpwuid)
pwd.getpwnam = _key_error_when_missing(pwd.getpwnam)
