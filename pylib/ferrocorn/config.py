"""Reading a Gunicorn configuration file (``-c gunicorn.conf.py`` or
``-c python:module``) the way Gunicorn does: the file is executed as Python
and its top-level names are the settings.

``read(source)`` returns ``[(name, kind, values)]`` for every public name:
kind is ``"flag"`` (a bool; values ``["1"]`` or ``[]``), ``"values"`` (str,
int, float, list, tuple or dict, as strings; a dict as ``KEY=VALUE``),
``"hook"`` (a callable) or ``"other"`` (anything else, e.g. an imported
module). The server decides which names are settings.
"""

import importlib
import os


class ConfigFileError(Exception):
    """The configuration file cannot be read."""


def namespace(source):
    """The file's (or module's) top-level names."""
    if source.startswith("python:"):
        module = importlib.import_module(source[len("python:"):])
        return vars(module)
    if not os.path.exists(source):
        raise ConfigFileError("configuration file %r does not exist" % source)
    with open(source, "rb") as file:
        code = compile(file.read(), source, "exec")
    names = {
        "__builtins__": __builtins__,
        "__name__": "__config__",
        "__file__": os.path.abspath(source),
        "__doc__": None,
        "__package__": None,
    }
    exec(code, names, names)
    return names


def _text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def read(source):
    settings = []
    for name, value in namespace(source).items():
        if name.startswith("_"):
            continue
        if isinstance(value, bool):
            settings.append((name, "flag", ["1"] if value else []))
        elif name == "umask" and isinstance(value, int):
            # Gunicorn's umask is a number (0o022); the flag takes octal text.
            settings.append((name, "values", [oct(value)]))
        elif isinstance(value, (str, int, float)):
            settings.append((name, "values", [_text(value)]))
        elif isinstance(value, (list, tuple)):
            settings.append((name, "values", [_text(item) for item in value]))
        elif isinstance(value, dict):
            settings.append((name, "values", ["%s=%s" % (k, _text(v)) for k, v in value.items()]))
        elif value is None:
            settings.append((name, "values", []))
        elif callable(value) and not isinstance(value, type):
            settings.append((name, "hook", []))
        else:
            settings.append((name, "other", []))
    return settings
