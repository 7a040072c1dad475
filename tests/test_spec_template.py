"""Templates: placeholders, literal braces, quoting, single substitution."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xqdecl.spec import Template, TemplateError


def test_names_and_render() -> None:
    template = Template("run {sample} rep {rep} again {sample} #{index}")
    assert template.names == ("sample", "rep", "index")
    assert template.render({"sample": "A", "rep": "2", "index": "7"}) == "run A rep 2 again A #7"
    assert not template.is_constant


def test_literal_braces() -> None:
    template = Template("awk '{{print $1}}' {f} ${{HOME}} }}{{")
    assert template.names == ("f",)
    assert template.render({"f": "x"}) == "awk '{print $1}' x ${HOME} }{"


def test_constant_template() -> None:
    template = Template("plain text {{x}}")
    assert template.is_constant
    assert template.names == ()
    assert template.render({}) == "plain text {x}"
    assert template.render({}, quote=True) == "plain text {x}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a {b", "unclosed '{' in 'a {b'"),
        ("a } b", "single '}' in 'a } b'"),
        ("{ x }", "invalid placeholder '{ x }'"),
        ("{1x}", "invalid placeholder '{1x}'"),
        ("{a.b}", "invalid placeholder '{a.b}'"),
        ("{}", "invalid placeholder '{}'"),
        ("{a{b}}", "unclosed '{'"),
    ],
)
def test_malformed(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match="^" + message.replace("{", r"\{").replace(
            "}", r"\}").replace(".", r"\.")) as caught:
        Template(text, ("jobs", 0, "cmd"))
    assert caught.value.loc == ("jobs", 0, "cmd")


def test_unknown_placeholder_check() -> None:
    template = Template("{sampel} {rep}", "jobs[3].env.X")
    assert template.loc == ("jobs", 3, "env", "X")
    assert template.unknown({"sample", "rep", "index"}) == ["sampel"]
    with pytest.raises(TemplateError) as caught:
        template.check({"sample", "rep", "index"})
    assert caught.value.message == (
        "unknown placeholder {sampel} (did you mean {sample}?); known: index, rep, sample")
    Template("{rep}").check({"rep"})


def test_quoting() -> None:
    template = Template("echo {a} > {b}.txt")
    values = {"a": "it's a $(trap)", "b": "x y"}
    assert template.render(values, quote=True) == (
        f"echo {shlex.quote(values['a'])} > 'x y'.txt")
    assert shlex.split(template.render(values, quote=True)) == [
        "echo", "it's a $(trap)", ">", "x y.txt"]
    assert template.render(values) == "echo it's a $(trap) > x y.txt"


def test_values_are_substituted_once() -> None:
    template = Template("{a}-{b}")
    assert template.render({"a": "{b}", "b": "{{a}}"}) == "{b}-{{a}}"
    assert template.render({"a": "{b}", "b": "{0}"}, quote=True) == "'{b}'-'{0}'"


def test_missing_value_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="no value for placeholder"):
        Template("{a}").render({})


def test_equality_and_repr() -> None:
    assert Template("{a}") == Template("{a}", "x")
    assert len({Template("{a}"), Template("{a}")}) == 1
    assert repr(Template("x")) == "Template('x')"


_piece = st.one_of(
    st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=5),
    st.sampled_from(["{{", "}}", "{a}", "{b}", "{index}"]),
)


@settings(max_examples=200, deadline=None)
@given(pieces=st.lists(_piece, max_size=8),
       a=st.text(max_size=5), b=st.text(max_size=5))
def test_render_matches_a_reference(pieces: list[str], a: str, b: str) -> None:
    text = "".join(pieces)
    values = {"a": a, "b": b, "index": "3"}
    expected = "".join(
        "{" if p == "{{" else "}" if p == "}}" else values[p[1:-1]]
        if p in ("{a}", "{b}", "{index}") else p
        for p in pieces
    )
    assert Template(text).render(values) == expected


def test_renderer_is_render() -> None:
    template = Template("a '{x}' \\ \"{y}\" {{z}}")
    values = {"x": "1 2", "y": "it's"}
    assert template.renderer()(values) == template.render(values) == "a '1 2' \\ \"it's\" {z}"
    assert template.renderer(quote=True)(values) == template.render(values, quote=True)
    assert Template("k").renderer()({}) == "k"
