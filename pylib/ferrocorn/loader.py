"""Find the WSGI app named by APP_MODULE, as Gunicorn does.

``MODULE`` (the callable is then ``application``), ``MODULE:NAME``, or
``MODULE:FACTORY(ARGS)`` where ARGS are Python literals. Failures that are the
operator's (no such module, no such name, not callable) raise AppLoadError
with one line that says what is wrong; errors inside the app's own code
propagate with their traceback.
"""

import ast
import importlib
import sys


class AppLoadError(Exception):
    """APP_MODULE does not name a usable WSGI callable."""


def _split(spec):
    module_name, sep, expression = spec.partition(":")
    if not module_name or (sep and not expression):
        raise AppLoadError("invalid APP_MODULE %r: expected MODULE or MODULE:CALLABLE" % spec)
    return module_name, expression or "application"


def _import(module_name):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise AppLoadError(
                "cannot import %r: no module named %r on sys.path %r"
                % (module_name, missing, sys.path)
            ) from None
        raise


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
