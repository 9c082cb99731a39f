"""The framework examples' tests, run without Python installed:

    ferrocorn run --pythonpath "$(ls -d wheels/*.whl | paste -sd,)" -m pytest examples/tests

Each example is called as a WSGI app through Werkzeug's test client, so one
helper serves all four frameworks.
"""

import pytest
from werkzeug.test import Client


@pytest.fixture
def client_for():
    return Client
