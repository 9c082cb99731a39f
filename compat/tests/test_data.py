"""Serialisation, validation, dates and i18n, small utilities."""

import datetime
import io

import pytest

pk = pytest.mark.packages


@pk("marshmallow")
def test_marshmallow():
    """marshmallow loads, validates and dumps"""
    from marshmallow import Schema, ValidationError, fields

    class User(Schema):
        name = fields.Str(required=True)
        born = fields.Date()

    assert User().load({"name": "a", "born": "1815-12-10"})["born"] == datetime.date(1815, 12, 10)
    with pytest.raises(ValidationError):
        User().load({"born": "x"})


@pk("attrs", "cattrs")
def test_attrs_cattrs():
    """attrs classes structured and unstructured by cattrs"""
    import attrs
    import cattrs

    @attrs.define
    class Point:
        x: int
        y: int = 0

    assert cattrs.structure({"x": "1", "y": 2}, Point) == Point(1, 2)
    assert cattrs.unstructure(Point(3)) == {"x": 3, "y": 0}
    assert attrs.evolve(Point(1), y=5) == Point(1, 5)


@pk("simplejson")
def test_simplejson():
    """simplejson round trip with Decimal"""
    import decimal

    import simplejson

    text = simplejson.dumps({"p": decimal.Decimal("1.10")}, use_decimal=True)
    assert text == '{"p": 1.10}'
    assert simplejson.loads(text, use_decimal=True)["p"] == decimal.Decimal("1.10")


@pk("msgpack")
def test_msgpack():
    """msgpack packs and unpacks"""
    import msgpack

    data = {"a": [1, 2.5, b"x", None]}
    assert msgpack.unpackb(msgpack.packb(data)) == data


@pk("pyyaml")
def test_pyyaml():
    """PyYAML safe_load and dump"""
    import yaml

    assert yaml.safe_load("a: [1, 2]\nb: {c: true}") == {"a": [1, 2], "b": {"c": True}}
    assert yaml.safe_load(yaml.safe_dump({"k": "v"})) == {"k": "v"}


@pk("toml", "tomli", "tomlkit")
def test_toml_family():
    """toml, tomli and tomlkit read the same document; tomlkit keeps comments"""
    import toml
    import tomli
    import tomlkit

    text = '# settings\n[server]\nport = 8000\n'
    assert toml.loads(text) == tomli.loads(text) == {"server": {"port": 8000}}
    doc = tomlkit.parse(text)
    doc["server"]["port"] = 9000
    assert tomlkit.dumps(doc) == "# settings\n[server]\nport = 9000\n"


@pk("jsonpickle")
def test_jsonpickle():
    """jsonpickle round-trips an object"""
    import jsonpickle

    value = {"when": datetime.date(2020, 1, 2), "set": {1, 2}}
    assert jsonpickle.decode(jsonpickle.encode(value)) == value


@pk("cerberus")
def test_cerberus():
    """Cerberus validates a document"""
    from cerberus import Validator

    validator = Validator({"age": {"type": "integer", "min": 0}})
    assert validator.validate({"age": 3}) and not validator.validate({"age": -1})


@pk("voluptuous")
def test_voluptuous():
    """voluptuous validates and coerces"""
    from voluptuous import Coerce, Invalid, Schema

    schema = Schema({"n": Coerce(int)})
    assert schema({"n": "5"}) == {"n": 5}
    with pytest.raises(Invalid):
        schema({"n": "x"})


@pk("python-dateutil", "six")
def test_dateutil():
    """dateutil parses, adds relative deltas and recurrence rules"""
    from dateutil import parser, rrule
    from dateutil.relativedelta import relativedelta

    when = parser.parse("2024-01-31T10:00:00+02:00")
    assert (when + relativedelta(months=1)).day == 29
    days = list(rrule.rrule(rrule.WEEKLY, count=3, dtstart=datetime.datetime(2024, 1, 1)))
    assert [d.day for d in days] == [1, 8, 15]


@pk("pytz")
def test_pytz():
    """pytz localises across a DST change"""
    import pytz

    paris = pytz.timezone("Europe/Paris")
    assert paris.localize(datetime.datetime(2024, 7, 1, 12)).utcoffset() == datetime.timedelta(hours=2)


@pk("tzdata")
def test_zoneinfo_tzdata():
    """zoneinfo with the tzdata package's database"""
    import zoneinfo

    zone = zoneinfo.ZoneInfo("America/New_York")
    assert datetime.datetime(2024, 1, 1, tzinfo=zone).utcoffset() == datetime.timedelta(hours=-5)


@pk("tzlocal")
def test_tzlocal():
    """tzlocal finds the local zone"""
    import tzlocal

    assert tzlocal.get_localzone() is not None


@pk("arrow", "python-dateutil")
def test_arrow():
    """arrow shifts, converts and humanises"""
    import arrow

    start = arrow.get("2024-03-01T00:00:00+00:00")
    assert start.shift(days=-1).format("YYYY-MM-DD") == "2024-02-29"
    assert start.shift(hours=-2).humanize(start) == "2 hours ago"


@pk("babel")
def test_babel():
    """Babel formats dates, numbers and currencies per locale"""
    from babel.dates import format_date
    from babel.numbers import format_currency

    assert format_currency(1234.5, "EUR", locale="de_DE") == "1.234,50\xa0€"
    assert format_date(datetime.date(2024, 3, 1), format="long", locale="fr_FR") == "1 mars 2024"


@pk("humanize")
def test_humanize():
    """humanize writes sizes and counts for people"""
    import humanize

    assert humanize.naturalsize(1_500_000) == "1.5 MB"
    assert humanize.intcomma(1234567) == "1,234,567"


@pk("python-slugify", "text-unidecode")
def test_slugify():
    """python-slugify transliterates a title"""
    from slugify import slugify

    assert slugify("Ça va très bien, Ünïcode!") == "ca-va-tres-bien-unicode"


@pk("more-itertools")
def test_more_itertools():
    """more-itertools chunks and windows"""
    import more_itertools

    assert list(more_itertools.chunked(range(5), 2)) == [[0, 1], [2, 3], [4]]
    assert list(more_itertools.windowed("abc", 2)) == [("a", "b"), ("b", "c")]


@pk("pyparsing")
def test_pyparsing():
    """pyparsing parses an arithmetic grammar"""
    import pyparsing as pp

    integer = pp.Word(pp.nums).set_parse_action(lambda t: int(t[0]))
    expr = integer + pp.OneOrMore(pp.one_of("+ -") + integer)
    assert expr.parse_string("1 + 2 - 3").as_list() == [1, "+", 2, "-", 3]


@pk("packaging")
def test_packaging():
    """packaging compares versions and evaluates markers"""
    from packaging.requirements import Requirement
    from packaging.version import Version

    assert Version("1.10") > Version("1.9")
    assert Requirement("flask>=3; python_version>'3'").specifier.contains("3.1")


@pk("typing-extensions")
def test_typing_extensions():
    """typing_extensions' TypedDict and Protocol"""
    from typing_extensions import Protocol, TypedDict, runtime_checkable

    class Movie(TypedDict):
        title: str

    @runtime_checkable
    class Closable(Protocol):
        def close(self): ...

    assert Movie.__required_keys__ == frozenset({"title"}) and isinstance(io.StringIO(), Closable)


@pk("deprecated", "wrapt")
def test_deprecated():
    """deprecated (on wrapt) warns when a function is called"""
    import warnings

    from deprecated import deprecated

    @deprecated(reason="use g")
    def f():
        return 1

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert f() == 1
    assert "use g" in str(caught[0].message)


@pk("zope.interface")
def test_zope_interface():
    """zope.interface declares and verifies an interface"""
    from zope.interface import Interface, implementer
    from zope.interface.verify import verifyObject

    class IGreeter(Interface):
        def greet(name):
            """Say hello."""

    @implementer(IGreeter)
    class Greeter:
        def greet(self, name):
            return "hi " + name

    assert verifyObject(IGreeter, Greeter()) and IGreeter.providedBy(Greeter())


@pk("six")
def test_six():
    """six's compatibility helpers"""
    import six

    assert six.ensure_str(b"x") == "x" and six.PY3


@pk("greenlet")
def test_greenlet():
    """greenlet switches between two stacks (a C extension)"""
    import greenlet

    log = []
    child = greenlet.greenlet(lambda: log.append(greenlet.getcurrent().parent.switch("paused")) or "done")
    assert child.switch() == "paused"
    assert child.switch("resumed") == "done" and log == ["resumed"]
