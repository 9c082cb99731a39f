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


def _read_line(prompt):
    """One line from the terminal in its canonical mode (the kernel's line
    editing: erase, kill, Ctrl-D). Not ``input()``: RustPython's reads the
    terminal with a new rustyline editor per call, which drops whatever it
    read past the first line, so a pasted block lost all but its first line."""
    sys.stdout.write(prompt)
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line.rstrip("\n")


def interact():
    """The prompt for ``ferrocorn run`` with a terminal and nothing to run:
    the standard library's ``code.interact`` (no history)."""
    import code

    code.interact(
        banner="ferrocorn %s (RustPython)\nType Ctrl-D to leave." % sys.version.split()[0],
        readfunc=_read_line,
        exitmsg="",
    )
