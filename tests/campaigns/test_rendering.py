"""Merge tags: only the recipient's plain values are reachable, everything else is refused
with a sentence for the customer, HTML parts are escaped, and one compile renders many."""

from __future__ import annotations

from datetime import date

import pytest
from django.utils.safestring import mark_safe

from campaigns import rendering
from campaigns.rendering import (
    ALLOWED_FIELDS,
    TemplateRefused,
    check_template,
    compile_template,
    sample_values,
    without_forbidden_tags,
)


def render(text: str, values: dict[str, object], *, autoescape: bool = True) -> str:
    return compile_template(text, autoescape=autoescape).render(values)


# -- check_template -------------------------------------------------------------------------


def test_it_accepts_every_field_and_a_declared_attribute():
    text = " ".join(
        f"{{{{ {name} }}}}" for name in ALLOWED_FIELDS if name not in ("attributes", "event")
    )
    text += ' {{ attributes.city|default:"" }} {{ event.order_id }}'
    text += " {% if first_name %}x{% else %}y{% endif %}"

    assert check_template(text, attribute_names={"city"}) == []


def test_it_refuses_a_settings_lookup_naming_it():
    problems = check_template("Key: {{ settings.SECRET_KEY }}", attribute_names=set())

    assert len(problems) == 1
    assert problems[0].startswith("Unknown merge tag {{ settings.SECRET_KEY }} on line 1: use one")
    assert "{{ first_name }}" in problems[0]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("{% debug %}", "{% debug %}"),
        ("{% load static %}", "{% load static %}"),
        ('{% include "x" %}', '{% include "x" %}'),
        ('{% extends "base.html" %}', '{% extends "base.html" %}'),
        ("{% url 'admin:index' %}", "{% url 'admin:index' %}"),
        ("{% csrf_token %}", "{% csrf_token %}"),
        ('{% now "Y" %}', '{% now "Y" %}'),
        ("{% for x in attributes %}{{ x }}{% endfor %}", "{% for x in attributes %}"),
        ("{% if first_name %}a{% elif email %}b{% endif %}", "{% elif email %}"),
        ("{% templatetag openblock %}", "{% templatetag openblock %}"),
    ],
)
def test_it_refuses_forbidden_tags_naming_them(text, named):
    problems = check_template(text, attribute_names=set())

    assert any(named in problem and "not allowed" in problem for problem in problems), problems


def test_it_reports_each_forbidden_tag_and_still_checks_the_rest():
    text = "Hello\n{% load static %}\n{% debug %}{{ attributes.shoe }}"

    problems = check_template(text, attribute_names={"city"})

    assert problems == [
        "The tag {% load static %} on line 2 is not allowed: merge tags can only use {% if %}, "
        "{% else %} and {% endif %}.",
        "The tag {% debug %} on line 3 is not allowed: merge tags can only use {% if %}, "
        "{% else %} and {% endif %}.",
        "Unknown attribute {{ attributes.shoe }} on line 3: the declared ones are "
        "{{ attributes.city }}.",
    ]


def test_it_refuses_an_undeclared_attribute():
    assert check_template("{{ attributes.shoe }}", attribute_names=set()) == [
        "Unknown attribute {{ attributes.shoe }} on line 1: none is declared yet."
    ]


@pytest.mark.parametrize(
    "text",
    [
        "{{ email.upper }}",
        "{{ attributes }}",
        "{{ attributes.city.lower }}",
        "{{ request.user }}",
        "{{ first_name|default:settings.SECRET_KEY }}",
        "{% if user.is_staff %}x{% endif %}",
    ],
)
def test_it_refuses_lookups_beyond_the_fields(text):
    problems = check_template(text, attribute_names={"city"})

    assert len(problems) == 1
    assert problems[0].startswith("Unknown merge tag")


@pytest.mark.parametrize("filter_", ["safe", "escape", "length", "pprint", "stringformat:'s'"])
def test_it_refuses_filters_outside_the_list(filter_):
    problems = check_template(f"{{{{ first_name|{filter_} }}}}", attribute_names=set())

    name = filter_.split(":")[0]
    assert problems == [
        f"The filter |{name} on line 1 is not allowed: use one of default, default_if_none, "
        "upper, lower, title, capfirst, date, floatformat, yesno, truncatechars, linebreaksbr."
    ]


def test_it_reports_a_syntax_error_with_its_line():
    problems = check_template("Hi\nthere\n{% if first_name %}x", attribute_names=set())

    assert len(problems) == 1
    assert "line 3" in problems[0]
    assert problems[0].startswith("Syntax error")


# -- compile_template and render ------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"first_name": "Jane"}, "Hi Jane"),
        ({"first_name": ""}, "Hello"),
        ({}, "Hello"),
    ],
)
def test_it_renders_if_and_else(values, expected):
    text = "{% if first_name %}Hi {{ first_name }}{% else %}Hello{% endif %}"

    assert render(text, values) == expected


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [({"city": "Lisbon"}, "[Lisbon]"), ({}, "[]"), ({"city": None}, "[]")],
)
def test_it_renders_an_attribute_or_nothing_with_default(attributes, expected):
    text = '[{{ attributes.city|default:"" }}]'

    assert render(text, {"attributes": attributes}) == expected


def test_it_escapes_values_in_html_and_not_in_text():
    values = {"first_name": "<b>Jane</b> & co"}

    assert render("Hi {{ first_name }}", values) == "Hi &lt;b&gt;Jane&lt;/b&gt; &amp; co"
    assert render("Hi {{ first_name }}", values, autoescape=False) == "Hi <b>Jane</b> & co"


@pytest.mark.parametrize(
    "text",
    [
        '{{ "<script>x</script>" }}',
        '{{ first_name|default:"<script>x</script>" }}',
        '{{ missing|default_if_none:"<script>x</script>" }}',
        '{{ first_name|yesno:"yes,<script>x</script>" }}',
        '{{ first_name|default:"<script>x</script>"|upper|truncatechars:50 }}',
    ],
)
def test_it_escapes_string_literals_in_html(text):
    rendered = render(text, {"first_name": "", "missing": None})

    assert "<script>" not in rendered
    assert "&lt;" in rendered


def test_it_renders_unknown_variables_as_empty():
    assert render("[{{ settings.SECRET_KEY }}][{{ nope }}][{{ attributes.x }}]", {}) == "[][][]"


class Person:
    first_name = "Jane"


@pytest.mark.parametrize(
    "values",
    [
        {"first_name": Person()},
        {"first_name": mark_safe("<b>Jane</b>")},
        {"first_name": ["Jane"]},
        {"attributes": {"city": Person()}},
        {"attributes": {1: "x"}},
        {"attributes": {"a": {"b": {"c": {"d": "too deep"}}}}},
    ],
)
def test_it_refuses_values_that_are_not_plain(values):
    template = compile_template("{{ first_name }}", autoescape=True)

    with pytest.raises(TypeError):
        template.render(values)


def test_it_refuses_an_object_instead_of_a_dict():
    template = compile_template("{{ first_name }}", autoescape=True)

    with pytest.raises(TypeError):
        template.render(Person())  # type: ignore[arg-type]  # what is being refused


def test_it_does_not_let_a_template_change_the_values():
    attributes = {"city": "Lisbon", "plan": "Pro"}

    rendered = render(
        "{{ attributes.clear }}{{ attributes.popitem }}{{ attributes.city }}",
        {"attributes": attributes},
    )

    assert rendered == "Lisbon"
    assert attributes == {"city": "Lisbon", "plan": "Pro"}


def test_it_refuses_at_compile_a_stored_template_with_a_forbidden_tag():
    with pytest.raises(TemplateRefused) as refused:
        compile_template("{% load static %}Hi {{ first_name }}", autoescape=True)

    assert refused.value.problems == [
        "The tag {% load static %} on line 1 is not allowed: merge tags can only use {% if %}, "
        "{% else %} and {% endif %}."
    ]


def test_it_refuses_at_compile_a_syntax_error_and_an_unknown_filter():
    with pytest.raises(TemplateRefused):
        compile_template("{% if x %}", autoescape=True)
    with pytest.raises(TemplateRefused):
        compile_template("{{ first_name|safe }}", autoescape=True)


def test_it_renders_nothing_for_forbidden_tags_after_falling_back():
    text = '{% load static %}{% now "Y" %}Hi {% debug %}{{ first_name }}{% csrf_token %}'

    template = compile_template(without_forbidden_tags(text), autoescape=True)

    assert template.render({"first_name": "Jane"}) == "Hi Jane"


def test_it_has_none_of_the_django_builtins():
    engine = rendering._ENGINES[True]
    (library,) = engine.template_builtins

    assert set(library.tags) == {"if"}
    assert set(library.filters) == set(rendering.ALLOWED_FILTERS)
    assert engine.libraries == {}
    assert engine.loaders == []
    assert engine.context_processors == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ first_name|upper }}", "JANE"),
        ("{{ email|lower }}", "jane@example.com"),
        ("{{ full_name|lower|title }}", "Jane Doe"),
        ("{{ attributes.pet|capfirst }}", "Cat"),
        ("{{ attributes.points|floatformat:2 }}", "12.50"),
        ('{{ attributes.vip|yesno:"VIP,regular" }}', "VIP"),
        ("{{ attributes.note|truncatechars:6 }}", "Hello…"),
        ('{{ attributes.joined|date:"Y-m-d" }}', "2024-03-01"),
        ('{{ attributes.nothing|default_if_none:"n/a" }}', "n/a"),
    ],
)
def test_it_renders_the_allowed_filters(text, expected):
    values = {
        "first_name": "Jane",
        "email": "JANE@example.com",
        "full_name": "JANE DOE",
        "attributes": {
            "pet": "cat",
            "points": 12.5,
            "vip": True,
            "note": "Hello world",
            "joined": date(2024, 3, 1),
            "nothing": None,
        },
    }

    assert render(text, values, autoescape=False) == expected


def test_it_renders_many_recipients_from_one_compile():
    template = compile_template("Hi {{ first_name }} <{{ email }}>", autoescape=False)

    rendered = [
        template.render({"first_name": f"P{n}", "email": f"p{n}@example.com"}) for n in range(3)
    ]

    assert rendered == [
        "Hi P0 <p0@example.com>",
        "Hi P1 <p1@example.com>",
        "Hi P2 <p2@example.com>",
    ]


def test_it_returns_a_plain_str():
    # a SafeString would be output unescaped if it reached a page template
    rendered = render("<p>{{ first_name }}</p>", {"first_name": "Jane"})

    assert type(rendered) is str


# -- sample_values --------------------------------------------------------------------------


def test_it_gives_plain_sample_values_for_every_field():
    values = sample_values(account_name="Acme", postal_address="1 Road, Town")
    every_field = " ".join(f"[{{{{ {name} }}}}]" for name in ALLOWED_FIELDS if name != "attributes")

    rendered = render(every_field + " {{ attributes.city }}", values)

    assert set(values) == set(ALLOWED_FIELDS)
    assert "[]" not in rendered
    assert rendered.startswith("[jane@example.com] [Jane] [Doe] [Jane Doe] [#]")
    assert "[Acme] [1 Road, Town]" in rendered
    assert check_template("{{ attributes.city }}", attribute_names=set(values["attributes"])) == []
