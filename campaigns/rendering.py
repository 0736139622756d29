"""Merge tags: the small, safe template language of campaign subjects and bodies.

Guarantees:
- Templates are rendered by an engine of their own, not the project's: no loaders, no
  context processors, no tag or filter library but ours. The only block tags are
  ``{% if %}``, ``{% else %}`` and ``{% endif %}``; the only filters are those in
  ``ALLOWED_FILTERS``. ``{% load %}``, ``{% include %}``, ``{% debug %}``, ``{% url %}``…
  do not exist for it.
- A template only reaches the values it is given, and those are plain data (str, int,
  float, bool, None, date, datetime, and dicts of them, read-only while rendering);
  anything else, a ``SafeString`` included, is refused with ``TypeError``. An unknown
  variable renders as an empty string.
- With ``autoescape`` (HTML parts) every value and every string literal of the template
  is escaped: a literal such as ``{{ x|default:"<b>" }}`` cannot insert markup.
  ``None`` renders as "None", as in Django: give "" or use ``|default_if_none:""``.
- ``check_template`` tells the customer, in sentences, everything that would be refused or
  would render nothing. ``compile_template`` raises ``TemplateRefused`` for a template it
  cannot compile (a forbidden tag, a syntax error); a caller holding a template saved by
  other means can fall back to ``compile_template(without_forbidden_tags(text), …)``, in
  which every forbidden tag renders nothing.
- Compile once per campaign, then ``render`` as often as needed: rendering does no I/O
  and parses nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from types import MappingProxyType
from typing import cast

from django.template import (
    Context,
    Engine,
    Library,
    TemplateSyntaxError,
    defaultfilters,
    defaulttags,
)
from django.template.base import (
    FilterExpression,
    Lexer,
    Node,
    NodeList,
    Origin,
    Parser,
    Template,
    TextNode,
    TokenType,
    Variable,
    VariableNode,
    tag_re,
)
from django.utils.safestring import SafeData

ALLOWED_FIELDS: tuple[str, ...] = (
    "email",
    "first_name",
    "last_name",
    "full_name",
    "attributes",
    "unsubscribe_url",
    "preferences_url",
    "view_in_browser_url",
    "account_name",
    "postal_address",
    "stop_tracking_url",
    "event",
)
ALLOWED_FILTERS: tuple[str, ...] = (
    "default",
    "default_if_none",
    "upper",
    "lower",
    "title",
    "capfirst",
    "date",
    "floatformat",
    "yesno",
    "truncatechars",
    "linebreaksbr",
)
ALLOWED_TAGS: tuple[str, ...] = ("if", "else", "endif")
# Names the if tag compares with; Context provides them.
_CONSTANTS = frozenset({"True", "False", "None"})
_KNOWN_NAMES = _CONSTANTS | frozenset(ALLOWED_FIELDS) - {"attributes", "event"}
# {{ event.NAME }}: a property of the event that started a journey (journeys); any name,
# as events bring their own. Empty outside a journey.
_EVENT_PROPERTY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_PLAIN_TYPES = frozenset({str, int, float, bool, type(None), date, datetime})
_MAX_DEPTH = 3


class TemplateRefused(Exception):
    """A template that cannot be compiled safely; ``problems`` says why, for the customer."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(" ".join(problems))
        self.problems = problems


# -- the engine ------------------------------------------------------------------------------

_library = Library()
for _name in ALLOWED_FILTERS:
    # The functions keep the flags (is_safe, expects_localtime…) Django gave them.
    _library.filter(_name, getattr(defaultfilters, _name))
_library.tag("if", defaulttags.do_if)


class _MergeTagEngine(Engine):
    def get_template_builtins(self, builtins: list[str]) -> list[Library]:
        # Engine.__init__ asks for its builtins here, Django's own (defaulttags,
        # defaultfilters, loader_tags) first: a merge-tag engine has only its library.
        return [_library]


def _engine(autoescape: bool) -> Engine:
    return _MergeTagEngine(
        builtins=[],
        libraries={},
        loaders=[],
        context_processors=[],
        string_if_invalid="",
        autoescape=autoescape,
    )


_ENGINES = {True: _engine(True), False: _engine(False)}


# -- checking --------------------------------------------------------------------------------


def _tag_name(contents: str) -> str:
    bits = contents.split()
    return bits[0] if bits else ""


def _forbidden_tag_problems(text: str) -> list[str]:
    problems = []
    for token in Lexer(text).tokenize():
        if token.token_type != TokenType.BLOCK:
            continue
        name = _tag_name(token.contents)
        if name and name not in ALLOWED_TAGS:
            problems.append(
                f"The tag {{% {token.contents} %}} on line {token.lineno} is not allowed: "
                "merge tags can only use {% if %}, {% else %} and {% endif %}."
            )
    return problems


def without_forbidden_tags(text: str) -> str:
    """``text`` with every block tag but if/else/endif removed, so that it renders nothing."""

    def keep_allowed(match: re.Match[str]) -> str:
        tag = match.group(0)
        if tag.startswith("{%") and _tag_name(tag[2:-2]) not in (*ALLOWED_TAGS, ""):
            return ""
        return tag

    return tag_re.sub(keep_allowed, text)


def _syntax_problem(error: TemplateSyntaxError) -> str:
    token = getattr(error, "token", None)
    says_where = re.search(r"\bline \d+", str(error))
    where = f" on line {token.lineno}" if token is not None and not says_where else ""
    bad_filter = re.match(r"Invalid filter: '([^']*)'", str(error))
    if bad_filter:
        return (
            f"The filter |{bad_filter.group(1)}{where} is not allowed: use one of "
            + ", ".join(ALLOWED_FILTERS)
            + "."
        )
    return f"Syntax error{where}: {error}"


def _condition_expressions(condition: object) -> Iterator[FilterExpression]:
    if isinstance(condition, defaulttags.TemplateLiteral):
        # The literal of an {% if %} wraps the FilterExpression it was made from.
        yield cast(FilterExpression, condition.value)
        return
    for operand in (getattr(condition, "first", None), getattr(condition, "second", None)):
        if operand is not None:
            yield from _condition_expressions(operand)


def _line(node: Node) -> int:
    # The parser hands every node its token, and the lexer numbers every token.
    token = node.token
    assert token is not None
    assert token.lineno is not None
    return token.lineno


def _expressions(nodelist: NodeList) -> Iterator[tuple[FilterExpression, int]]:
    """Every filter expression of a compiled template, with its line."""
    for node in nodelist:
        if isinstance(node, VariableNode):
            yield node.filter_expression, _line(node)
        elif isinstance(node, defaulttags.IfNode):
            for condition, body in node.conditions_nodelists:
                if condition is not None:
                    for expression in _condition_expressions(condition):
                        yield expression, _line(node)
                yield from _expressions(body)
        elif not isinstance(node, TextNode):
            raise TemplateRefused([f"Unexpected {type(node).__name__} in a merge-tag template."])


def _variables(expression: FilterExpression) -> Iterator[Variable]:
    if isinstance(expression.var, Variable) and expression.var.lookups is not None:
        yield expression.var
    for _function, arguments in expression.filters:
        for is_lookup, argument in arguments:
            if is_lookup and isinstance(argument, Variable) and argument.lookups is not None:
                yield argument


def _variable_problem(variable: Variable, line: int, attribute_names: set[str]) -> str | None:
    lookups = variable.lookups or ()
    if len(lookups) == 1 and lookups[0] in _KNOWN_NAMES:
        return None
    if len(lookups) == 2 and lookups[0] == "event" and _EVENT_PROPERTY.match(lookups[1]):
        return None
    if len(lookups) == 2 and lookups[0] == "attributes":
        if lookups[1] in attribute_names:
            return None
        declared = ", ".join(f"{{{{ attributes.{name} }}}}" for name in sorted(attribute_names))
        return f"Unknown attribute {{{{ {variable.var} }}}} on line {line}: " + (
            f"the declared ones are {declared}." if declared else "none is declared yet."
        )
    fields = ", ".join(
        f"{{{{ {name} }}}}" for name in ALLOWED_FIELDS if name not in ("attributes", "event")
    )
    return (
        f"Unknown merge tag {{{{ {variable.var} }}}} on line {line}: use one of {fields}, "
        "{{ attributes.NAME }} for a declared attribute or, in a journey, {{ event.NAME }} "
        "for a property of the event that started it."
    )


def check_template(text: str, *, attribute_names: set[str]) -> list[str]:
    """The problems of a template, each a sentence for the customer; empty when it is fine.

    Forbidden tags are all reported; the rest of the template is then checked as if they
    were not there, so one pass lists unknown merge tags too. Only the first syntax error
    is reported, as the template cannot be read past it.
    """
    problems = _forbidden_tag_problems(text)
    engine = _ENGINES[True]
    tokens = [
        token
        for token in Lexer(text).tokenize()
        if token.token_type != TokenType.BLOCK or _tag_name(token.contents) in (*ALLOWED_TAGS, "")
    ]
    parser = Parser(tokens, engine.template_libraries, engine.template_builtins, Origin("check"))
    try:
        nodelist = parser.parse()
        expressions = list(_expressions(nodelist))
    except TemplateSyntaxError as error:
        return [*problems, _syntax_problem(error)]
    except TemplateRefused as refused:
        return [*problems, *refused.problems]

    seen: set[str] = set()
    for expression, line in expressions:
        for variable in _variables(expression):
            problem = _variable_problem(variable, line, attribute_names)
            if problem and str(variable.var) not in seen:
                seen.add(str(variable.var))
                problems.append(problem)
    return problems


# -- compiling and rendering -----------------------------------------------------------------


class _PlainLiteral:
    """A filter argument that resolves to a plain str.

    Django marks a template's string literals safe, and marks constant filter arguments
    safe again on every render; here the template is the customer's, so ``default:"<b>"``
    must be escaped like any value. A looked-up argument is resolved as it is.
    """

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def resolve(self, context: Context) -> str:
        return self.value


def _unmark_literals(expressions: list[tuple[FilterExpression, int]]) -> None:
    # str.__str__ drops the SafeString subclass.
    for expression, _line in expressions:
        if isinstance(expression.var, SafeData):
            expression.var = str.__str__(expression.var)
        for _function, arguments in expression.filters:
            for index, (is_lookup, argument) in enumerate(arguments):
                if not is_lookup and isinstance(argument, str):
                    arguments[index] = (True, _PlainLiteral(str.__str__(argument)))


def _plain(value: object, where: str, depth: int = 0) -> object:
    kind = type(value)
    if kind in _PLAIN_TYPES:
        return value
    if isinstance(value, dict) and kind is dict and depth < _MAX_DEPTH:
        plain = {}
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(f"{where} has a key that is not a str: {key!r}")
            plain[key] = _plain(item, f"{where}.{key}", depth + 1)
        # Read-only, so that a template cannot call dict methods that change it.
        return MappingProxyType(plain)
    raise TypeError(
        f"{where} is a {kind.__name__}: merge values must be str, int, float, bool, None, "
        "date, datetime or a dict of those"
    )


class CompiledTemplate:
    """A checked, compiled template; ``render`` is cheap and can run any number of times."""

    __slots__ = ("_template", "autoescape")

    def __init__(self, template: Template, *, autoescape: bool) -> None:
        self._template = template
        self.autoescape = autoescape

    def render(self, values: Mapping[str, object]) -> str:
        """The template with ``values``; raises ``TypeError`` for a value that is not plain."""
        if type(values) is not dict:
            raise TypeError(f"values must be a dict, not {type(values).__name__}")
        plain = {}
        for name, value in values.items():
            if type(name) is not str:
                raise TypeError(f"merge value names must be str, not {name!r}")
            plain[name] = _plain(value, name)
        rendered = self._template.render(Context(plain, autoescape=self.autoescape))
        return str.__str__(rendered)


def compile_template(text: str, *, autoescape: bool) -> CompiledTemplate:
    """Compile ``text`` once (``autoescape`` on for HTML, off for subjects and text parts).

    Raises ``TemplateRefused`` for a forbidden tag or a syntax error: nothing of such a
    template is ever rendered. Unknown merge tags compile and render as empty strings.
    """
    problems = _forbidden_tag_problems(text)
    if problems:
        raise TemplateRefused(problems)
    try:
        template = _ENGINES[autoescape].from_string(text)
    except TemplateSyntaxError as error:
        raise TemplateRefused([_syntax_problem(error)]) from error
    _unmark_literals(list(_expressions(template.nodelist)))
    return CompiledTemplate(template, autoescape=autoescape)


def contact_values(
    *,
    email: str,
    first_name: str,
    last_name: str,
    attributes: Mapping[str, object] | None,
    event: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """A contact's merge values, and the properties of the event that started their
    journey. The preview, the test send and the sender all build them here, so that what
    the editor shows is what recipients get."""
    return {
        "email": email,
        "first_name": first_name,
        "last_name": last_name,
        "full_name": f"{first_name} {last_name}".strip(),
        "attributes": dict(attributes or {}),
        "event": dict(event or {}),
    }


def sample_values(
    account_name: str = "Your Company",
    postal_address: str = "1 Example Street, 12345 Springfield",
) -> dict[str, object]:
    """Plain values for previews and test sends: Jane Doe, example attributes, ``#`` links."""
    return {
        **contact_values(
            email="jane@example.com",
            first_name="Jane",
            last_name="Doe",
            attributes={"city": "Lisbon", "company": "Example Ltd", "plan": "Premium"},
        ),
        "unsubscribe_url": "#",
        "preferences_url": "#",
        "view_in_browser_url": "#",
        "account_name": account_name,
        "postal_address": postal_address,
        "stop_tracking_url": "#",
    }
