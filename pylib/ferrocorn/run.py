"""``ferrocorn run``: what the Rust side needs from Python to run code as
``python`` does."""

import sys

from ferrocorn import loader


def explain(error):
    """One line when an ImportError comes from RustPython's limits (a C
    extension, a part of the standard library this build lacks), else None."""
    if not isinstance(error, ImportError):
        return None
    try:
        importer = loader._importer(error)
    except Exception:
        return None
    for candidate in loader._candidates(error):
        reason = loader._runtime_limit(candidate, importer)
        if reason:
            return "the code needs module %r, %s (imported from %s:%d)" % (
                candidate, reason, importer[0], importer[1])
    return None


def interact():
    """The prompt for ``ferrocorn run`` with a terminal and nothing to run:
    the standard library's ``code.interact`` (no line editing or history)."""
    import code

    code.interact(
        banner="ferrocorn %s (RustPython)\nType Ctrl-D to leave." % sys.version.split()[0],
        exitmsg="",
    )
