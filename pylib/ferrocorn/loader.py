"""Find the WSGI app named by APP_MODULE, as Gunicorn does.

``MODULE`` (the callable is then ``application``), ``MODULE:NAME``, or
``MODULE:FACTORY(ARGS)`` where ARGS are Python literals. Failures that are the
operator's (no such module, no such name, not callable) raise AppLoadError
with one line that says what is wrong; errors inside the app's own code
propagate with their traceback.
"""

import ast
import importlib
import os
import sys
import zipfile


class AppLoadError(Exception):
    """APP_MODULE does not name a usable WSGI callable."""


class ModuleImportError(AppLoadError):
    """APP_MODULE's module, or a module it needs, cannot be imported here.
    Gunicorn exits 3 for import failures and 4 for the rest of AppLoadError."""


def _split(spec):
    module_name, sep, expression = spec.partition(":")
    if not module_name or (sep and not expression):
        raise AppLoadError("invalid APP_MODULE %r: expected MODULE or MODULE:CALLABLE" % spec)
    return module_name, expression or "application"


def _import(module_name):
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        missing = error.name or ""
        if isinstance(error, ModuleNotFoundError) and (
            module_name == missing or module_name.startswith(missing + ".")
        ):
            raise ModuleImportError(
                "cannot import %r: no module named %r on sys.path %r"
                % (module_name, missing, sys.path)
            ) from None
        importer = _importer(error)
        for candidate in _candidates(error):
            reason = _runtime_limit(candidate, importer)
            if reason:
                raise ModuleImportError(
                    "importing %r needs module %r, %s (imported from %s:%d)"
                    % (module_name, candidate, reason, importer[0], importer[1])
                ) from None
        raise


def _candidates(error):
    """Modules whose absence an ImportError reports: its name, and for
    "cannot import name 'x' from 'pkg'" the submodule pkg.x."""
    names = [error.name] if error.name else []
    text = str(error)
    if text.startswith("cannot import name '") and "' from '" in text:
        name, _, rest = text[len("cannot import name '"):].partition("' from '")
        names.append(rest.partition("'")[0] + "." + name)
    return names


def _runtime_limit(missing, importer):
    """Why `missing` cannot be imported on RustPython, if that is the cause."""
    top = missing.partition(".")[0]
    stdlib_dir = os.path.dirname(os.__file__)
    if top in getattr(sys, "stdlib_module_names", ()) or os.path.dirname(importer[0]) == stdlib_dir:
        return "a part of the standard library this ferrocorn build does not include"
    extension = _extension_file(missing)
    if extension:
        return (
            "a C extension (%s), which RustPython cannot load: use a version of the package "
            "with a pure-Python fallback" % extension
        )
    return None


def _extension_file(missing):
    """A compiled file for module `missing` somewhere on sys.path."""
    parts = missing.split(".")
    for entry in sys.path:
        if os.path.isdir(entry):
            folder = os.path.join(entry, *parts[:-1])
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            for name in names:
                if name.startswith(parts[-1] + ".") and name.endswith((".so", ".pyd")):
                    return os.path.join(folder, name)
        elif zipfile.is_zipfile(entry):
            prefix = "/".join(parts)
            with zipfile.ZipFile(entry) as archive:
                for name in archive.namelist():
                    if name.startswith(prefix + ".") and name.endswith((".so", ".pyd")):
                        return "%s in %s" % (name, entry)
    return None


def _importer(error):
    """(file, line) of the import statement that failed, outside importlib."""
    where = ("?", 0)
    frame = error.__traceback__
    while frame is not None:
        filename = frame.tb_frame.f_code.co_filename
        if not filename.startswith("<frozen") and "importlib" not in filename:
            where = (filename, frame.tb_lineno)
        frame = frame.tb_next
    return where


def _parse_expression(spec, expression):
    try:
        node = ast.parse(expression.strip(), mode="eval").body
    except SyntaxError:
        raise AppLoadError("invalid callable %r in %r: expected NAME or NAME(ARGS)" % (expression, spec)) from None
    if isinstance(node, ast.Name):
        return node.id, None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        try:
            args = [ast.literal_eval(arg) for arg in node.args]
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
        except ValueError:
            raise AppLoadError("factory arguments in %r must be Python literals" % spec) from None
        return node.func.id, (args, kwargs)
    raise AppLoadError("invalid callable %r in %r: expected NAME or NAME(ARGS)" % (expression, spec))


def load(spec):
    """The WSGI callable that ``spec`` names."""
    module_name, expression = _split(spec)
    name, call = _parse_expression(spec, expression)
    module = _import(module_name)
    try:
        app = getattr(module, name)
    except AttributeError:
        raise AppLoadError("module %r has no attribute %r" % (module_name, name)) from None
    if call is not None:
        if not callable(app):
            raise AppLoadError("%s:%s is not callable, so it cannot be a factory" % (module_name, name))
        args, kwargs = call
        app = app(*args, **kwargs)
    if app is None:
        raise AppLoadError("%s gave None instead of a WSGI callable" % spec)
    if not callable(app):
        raise AppLoadError("%s is not callable (it is a %s)" % (spec, type(app).__name__))
    return app
