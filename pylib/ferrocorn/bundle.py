"""``ferrocorn bundle``: the bundled modules compiled to this interpreter's
bytecode, so a bundle's workers import them without compiling."""

import importlib.util
import sys
from importlib._bootstrap_external import _code_to_hash_pyc


def compile_sources(items):
    """``items``: (name in the bundle, source bytes) of ``.py`` files.
    Returns (name of its ``__pycache__`` file, bytes) for each that compiles:
    unchecked hash-based pycs (PEP 552), which hold no timestamp (the bundle
    stays reproducible) and which the import system uses without looking at
    the source's time. A file that does not compile is left to fail, if it
    is ever imported, as it would from a source tree."""
    tag = sys.implementation.cache_tag
    compiled = []
    for name, source in items:
        folder, _, file = name.rpartition("/")
        try:
            code = compile(source, name, "exec", dont_inherit=True)
        except (SyntaxError, ValueError):
            continue
        data = _code_to_hash_pyc(code, importlib.util.source_hash(source), checked=False)
        compiled.append(("%s/__pycache__/%s.%s.pyc" % (folder, file[:-3], tag), bytes(data)))
    return compiled
