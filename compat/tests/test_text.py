"""Templating, markup and documents."""

import pytest

pk = pytest.mark.packages


@pk("jinja2", "markupsafe")
def test_jinja2():
    """Jinja2 inheritance, filters and autoescaping"""
    from jinja2 import DictLoader, Environment, select_autoescape

    env = Environment(
        loader=DictLoader({"base.html": "<h1>{% block t %}{% endblock %}</h1>", "page.html": "{% extends 'base.html' %}{% block t %}{{ x|upper }}{% endblock %}"}),
        autoescape=select_autoescape(),
    )
    assert env.get_template("page.html").render(x="<i>") == "<h1>&lt;I&gt;</h1>"


@pk("markupsafe")
def test_markupsafe():
    """MarkupSafe escapes and marks safe strings"""
    from markupsafe import Markup, escape

    assert escape("<a>") == Markup("&lt;a&gt;")
    assert Markup("<b>%s</b>") % "<i>" == "<b>&lt;i&gt;</b>"


@pk("mako")
def test_mako():
    """Mako renders a template with a loop and a def"""
    from mako.template import Template

    text = Template("<%def name='x(n)'>[${n}]</%def>\n% for i in items:\n${x(i)}\n% endfor\n").render(items=[1, 2])
    assert text.split() == ["[1]", "[2]"]


@pk("chameleon")
def test_chameleon():
    """Chameleon page templates (TAL)"""
    from chameleon import PageTemplate

    template = PageTemplate('<ul><li tal:repeat="i items" tal:content="i"/></ul>')
    assert template(items=["a", "<b>"]).replace("\n", "") == "<ul><li>a</li><li>&lt;b&gt;</li></ul>"


@pk("markdown")
def test_markdown():
    """Python-Markdown with the tables extension"""
    import markdown

    html = markdown.markdown("# T\n\n|a|b|\n|-|-|\n|1|2|", extensions=["tables"])
    assert "<h1>T</h1>" in html and "<td>1</td>" in html


@pk("bleach", "webencodings")
def test_bleach():
    """bleach sanitises HTML and links URLs"""
    import bleach

    assert bleach.clean("<script>x</script><b>ok</b>") == "&lt;script&gt;x&lt;/script&gt;<b>ok</b>"
    assert bleach.linkify("see https://example.com") == 'see <a href="https://example.com" rel="nofollow">https://example.com</a>'


@pk("beautifulsoup4", "soupsieve")
def test_beautifulsoup():
    """BeautifulSoup parses HTML and selects with CSS (soupsieve)"""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup("<div><p class='a'>1</p><p>2</p></div>", "html.parser")
    assert [p.text for p in soup.select("p.a")] == ["1"]


@pk("html5lib", "webencodings", "six")
def test_html5lib():
    """html5lib parses broken HTML the way browsers do"""
    import html5lib

    tree = html5lib.parse("<p>a<p>b", namespaceHTMLElements=False)
    assert [p.text for p in tree.iter("p")] == ["a", "b"]


@pk("docutils")
def test_docutils():
    """docutils turns reStructuredText into HTML"""
    from docutils.core import publish_parts

    parts = publish_parts("Title\n=====\n\n*emphasis*", writer="html")
    assert parts["title"] == "Title" and "<em>emphasis</em>" in parts["body"]


@pk("pygments")
def test_pygments():
    """Pygments highlights Python as HTML"""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    assert '<span class="k">def</span>' in highlight("def f(): pass", PythonLexer(), HtmlFormatter())


@pk("markdown-it-py", "mdurl")
def test_markdown_it():
    """markdown-it-py renders CommonMark"""
    from markdown_it import MarkdownIt

    assert MarkdownIt().render("**b** [l](http://x)") == '<p><strong>b</strong> <a href="http://x">l</a></p>\n'
