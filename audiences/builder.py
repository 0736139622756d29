"""The segment builder page's form: a definition written as flat form fields, read back
into a definition, and the rows the page shows for it.

A node's form name is its path from the top group: ``r`` is the top, ``r_2`` its third
item, ``r_2_0`` the first item of that group. A condition posts ``<path>-field``,
``-op``, ``-value`` (and ``-value2`` for a range, ``-list``, ``-campaign``, ``-link``);
a group posts ``<path>-group`` and ``<path>-match``. The page re-renders the whole
builder from what was posted on every change, so it works with or without htmx.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from audiences.conditions import (
    CHOICE,
    DATES,
    ID,
    NONE,
    NUMBERS,
    TEXT,
    Context,
    Field,
    fields_for,
    is_group,
)

ROOT = "r"
NEW_CONDITION: dict[str, Any] = {"field": "email", "op": "contains", "value": ""}
PAIRS = (NUMBERS, DATES)


def _children(data: Mapping[str, Any], path: str) -> list[str]:
    """The paths of a group's items, in their order."""
    prefix = f"{path}_"
    found: set[int] = set()
    for key in data:
        if not key.startswith(prefix):
            continue
        head = key[len(prefix) :].split("_", 1)[0].split("-", 1)[0]
        if head.isdigit() and len(head) < 4:
            found.add(int(head))
    return [f"{path}_{index}" for index in sorted(found)]


def _posted_condition(data: Mapping[str, Any], path: str, fields: dict[str, Field]) -> dict:
    condition: dict[str, Any] = {
        "field": data.get(f"{path}-field", ""),
        "op": data.get(f"{path}-op", ""),
    }
    spec = fields.get(condition["field"])
    op = spec.ops.get(condition["op"]) if spec else None
    kind = op.value if op else TEXT
    if kind in PAIRS:
        condition["value"] = [data.get(f"{path}-value", ""), data.get(f"{path}-value2", "")]
    elif kind != NONE:
        condition["value"] = data.get(f"{path}-value", "")
    for key in spec.extras if spec else ():
        if data.get(f"{path}-{key}", "") != "":
            condition[key] = data[f"{path}-{key}"]
    return condition


def from_form(data: Mapping[str, Any], ctx: Context) -> dict[str, Any]:
    """The definition as posted, unchecked (``clean_definition`` says what is wrong)."""
    fields = fields_for(ctx)

    def group(path: str) -> dict[str, Any]:
        items = []
        for child in _children(data, path):
            if f"{child}-group" in data:
                items.append(group(child))
            elif f"{child}-field" in data:
                items.append(_posted_condition(data, child, fields))
        match = data.get(f"{path}-match", "all")
        return {"match": match if match in ("all", "any") else "all", "conditions": items}

    return group(ROOT)


def _node(definition: dict[str, Any], path: str) -> Any:
    node: Any = definition
    for index in path.split("_")[1:]:
        node = node["conditions"][int(index)]
    return node


def apply(definition: dict[str, Any], action: str) -> dict[str, Any]:
    """Add a condition or a group to a group, or remove an item: ``add:<path>``,
    ``group:<path>``, ``remove:<path>``. Anything else leaves it as it is."""
    verb, _, path = action.partition(":")
    if not path.startswith(ROOT) or not all(p.isdigit() for p in path.split("_")[1:]):
        return definition
    try:
        node = _node(definition, path)
    except (IndexError, KeyError, TypeError):
        return definition
    if verb == "add" and is_group(node):
        node["conditions"].append(dict(NEW_CONDITION))
    elif verb == "group" and is_group(node):
        node["conditions"].append({"match": "any", "conditions": [dict(NEW_CONDITION)]})
    elif verb == "remove" and path != ROOT:
        parent_path, _, index = path.rpartition("_")
        parent = _node(definition, parent_path)
        del parent["conditions"][int(index)]
    return definition


def _blank(value: Any) -> bool:
    if isinstance(value, list | tuple):
        return all(_blank(v) for v in value)
    return value is None or (isinstance(value, str) and not value.strip())


def without_blanks(definition: Any, errors: Mapping[str, str]) -> Any | None:
    """The definition without the conditions still waiting for a value, when those are
    all that is wrong with it (the builder counts the rest while one is being written);
    None when something else is wrong."""
    blank: set[str] = set()
    for where in errors:
        if not where.endswith(".value"):
            return None
        path = where[: -len(".value")]
        try:
            node = definition
            for part in path.split("."):
                node = node[int(part)] if part.isdigit() else node[part]
        except (KeyError, IndexError, TypeError, ValueError):
            return None
        if not isinstance(node, Mapping) or not _blank(node.get("value")):
            return None
        blank.add(path)

    def prune(node: Any, path: str) -> Any:
        if not is_group(node):
            return node
        where = f"{path}." if path else ""
        kept = [
            prune(item, f"{where}conditions.{index}")
            for index, item in enumerate(node["conditions"])
            if f"{where}conditions.{index}" not in blank
        ]
        return {**node, "conditions": kept}

    return prune(definition, "")


def problems(errors: Mapping[str, str]) -> list[tuple[str, str]]:
    """Each error with the condition it is about, numbered as the page shows them
    ("Condition 2.1"), for the summary beside the count."""
    found = []
    for where, message in errors.items():
        numbers = [
            str(int(part) + 1)
            for before, part in zip(where.split("."), where.split(".")[1:], strict=False)
            if before == "conditions" and part.isdigit()
        ]
        found.append((f"Condition {'.'.join(numbers)}" if numbers else "The conditions", message))
    return found


# -- what the page shows -------------------------------------------------------------------------


@dataclass
class Extra:
    key: str
    label: str
    options: list[tuple[int, str]]
    selected: str


@dataclass
class Row:
    """One condition as the page shows it."""

    path: str
    field: str
    op: str
    kind: str  # how its value is given (audiences.conditions: text, days, id…)
    value: str
    value2: str
    ops: list[tuple[str, str]]
    options: list[tuple[str, str]]  # for a choice or id value
    extras: list[Extra]
    errors: list[str]


@dataclass
class Group:
    path: str
    match: str
    items: list[Row | Group] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    depth: int = 0
    is_group: bool = True

    @property
    def can_nest(self) -> bool:
        return self.depth < 2


EXTRA_LABELS = {"list": "on the list", "campaign": "campaign", "link": "link"}
EXTRA_ANY = {"list": "any list", "campaign": "any campaign", "link": "any link"}


def field_choices(ctx: Context) -> list[tuple[str, list[tuple[str, str]]]]:
    """The fields, grouped for the select's optgroups."""
    grouped: dict[str, list[tuple[str, str]]] = {}
    for spec in fields_for(ctx).values():
        grouped.setdefault(spec.group, []).append((spec.name, spec.label))
    return list(grouped.items())


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def rows(definition: Any, ctx: Context, errors: Mapping[str, str]) -> Group:
    """The builder's tree for ``definition`` (as posted or as saved), with each error
    beside the part it names."""
    fields = fields_for(ctx)
    by_path: dict[str, list[str]] = {}
    for where, message in errors.items():
        parts = where.split(".")
        path, index = [ROOT], 0
        while (
            index + 1 < len(parts) and parts[index] == "conditions" and parts[index + 1].isdigit()
        ):
            path.append(parts[index + 1])
            index += 2
        by_path.setdefault("_".join(path), []).append(message)

    def group(node: Any, path: str, depth: int) -> Group:
        items: list[Row | Group] = []
        conditions = node.get("conditions") if isinstance(node, Mapping) else None
        for index, item in enumerate(conditions if isinstance(conditions, list) else []):
            at = f"{path}_{index}"
            if is_group(item):
                items.append(group(item, at, depth + 1))
            elif isinstance(item, Mapping):
                items.append(row(item, at))
        match = node.get("match") if isinstance(node, Mapping) else "all"
        return Group(
            path=path,
            match=match if match in ("all", "any") else "all",
            items=items,
            errors=by_path.get(path, []),
            depth=depth,
        )

    def row(item: Mapping[str, Any], path: str) -> Row:
        spec = fields.get(str(item.get("field", "")))
        if spec is None:
            spec = fields["email"]
        op_name = str(item.get("op", ""))
        if op_name not in spec.ops:
            op_name = next(iter(spec.ops))
        kind = spec.ops[op_name].value
        value = item.get("value")
        first, second = (
            (value[0], value[1])
            if isinstance(value, list | tuple) and len(value) == 2
            else (value, "")
        )
        options: list[tuple[str, str]] = []
        if kind == CHOICE and spec.choices:
            options = [(str(k), str(v)) for k, v in spec.choices.items()]
        elif kind == ID:
            options = [(str(pk), label) for pk, label in spec.options("value", ctx, item)]
        extras = [
            Extra(
                key=key,
                label=EXTRA_LABELS[key],
                options=[(pk, label) for pk, label in spec.options(key, ctx, item)],
                selected=_text(item.get(key)),
            )
            for key in spec.extras
            if key != "link" or item.get("campaign") not in (None, "")
        ]
        return Row(
            path=path,
            field=spec.name,
            op=op_name,
            kind=kind,
            value=_text(first) if kind != NONE else "",
            value2=_text(second),
            ops=[(name, op.label) for name, op in spec.ops.items()],
            options=options,
            extras=extras,
            errors=by_path.get(path, []),
        )

    return group(definition, ROOT, 0)
