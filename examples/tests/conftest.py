"""The framework examples' tests, run without Python installed:

    ferrocorn run --pythonpath "$(ls -d wheels/*.whl | paste -sd,)" -m pytest examples/tests

Every test runs once per example (`app` is parametrized), each called as a
WSGI app through Werkzeug's test client, which works for all four frameworks.
"""

import importlib

import pytest
from werkzeug.test import Client

EXAMPLES = [
    ("flask", "examples.flask_app", "app"),
    ("bottle", "examples.bottle_app", "app"),
    ("falcon", "examples.falcon_app", "app"),
    ("django", "examples.django_app", "application"),
]


@pytest.fixture(params=EXAMPLES, ids=[name for name, _, _ in EXAMPLES])
def example(request):
    """(name, a test client) for one framework example."""
    name, module, attribute = request.param
    app = getattr(importlib.import_module(module), attribute)
    return name, Client(app)
