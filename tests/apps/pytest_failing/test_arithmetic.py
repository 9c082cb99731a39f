"""A suite with one deliberate failure (tests/run_command.rs)."""


def add(a, b):
    return a + b


def test_addition_works():
    assert add(2, 2) == 4


def test_addition_is_wrong_on_purpose():
    assert add(1, 1) == 3
