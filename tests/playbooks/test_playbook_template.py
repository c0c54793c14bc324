"""The template language copies fields and does nothing else."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiops.playbooks.template import (
    MissingValueError,
    TemplateError,
    references,
    render,
)

CTX = {
    "target": {"name": "cart", "namespace": "shop"},
    "params": {"replicas": 4},
    "observed": {"pod": None},
}


def test_a_whole_reference_keeps_its_type() -> None:
    assert render("{{ params.replicas }}", CTX) == 4
    assert render("  {{params.replicas}} ", CTX) == 4
    assert render("n={{ params.replicas }}", CTX) == "n=4"
    assert render({"a": ["{{ target.name }}", 3]}, CTX) == {"a": ["cart", 3]}


def test_mixed_text() -> None:
    text = 'up{ns="{{ target.namespace }}",d="{{ target.name }}"} > {{ params.replicas }}'
    assert render(text, CTX) == 'up{ns="shop",d="cart"} > 4'
    assert references(text) == ["target.namespace", "target.name", "params.replicas"]


def test_unknown_and_missing_values() -> None:
    with pytest.raises(TemplateError, match=r"unknown template field 'target\.pod'"):
        render("{{ target.pod }}", CTX)
    with pytest.raises(MissingValueError, match=r"'observed\.pod' is not known"):
        render("{{ observed.pod }}", CTX)


@pytest.mark.parametrize(
    "text",
    [
        "{{ a }}",
        "{{ a.b() }}",
        "{{ a.b|x }}",
        "{{ a.__class__ }}",
        "{{ 1 + 1 }}",
        "{{ a.b }",
        "{ a.b }}",
        "{{ A.B }}",
    ],
)
def test_anything_but_a_dotted_field_is_refused(text: str) -> None:
    with pytest.raises(TemplateError):
        references(text)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_text_is_either_refused_or_only_copies_fields(text: str) -> None:
    try:
        refs = references(text)
    except TemplateError:
        return
    for ref in refs:
        assert re.fullmatch(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+", ref)
    if not refs:
        assert render(text, CTX) == text


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=40))
def test_rendered_values_are_not_re_expanded(value: str) -> None:
    # A value that itself looks like a template is copied as text, never evaluated.
    ctx = {"target": {"name": "{{ params.replicas }}" + value}}
    assert render("x-{{ target.name }}", ctx) == "x-{{ params.replicas }}" + value
