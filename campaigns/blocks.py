"""A campaign body made of blocks: checked JSON, written as MJML, rendered to HTML.

A document is ``{"settings": {...}, "blocks": [...]}``. Each block is a dict with an
``id`` and a ``type`` from a closed set; every other key is checked against that type's
fields (lengths, colours ``#rrggbb``, sizes in pixels within bounds, alignments, fonts
from a list, links by scheme), so nothing a customer types reaches MJML unchecked.
Text is escaped; a text block's rich text goes through ``sanitizing.sanitize_html``.
Merge tags (``{{ first_name }}``) pass through as typed, in text and in links.

``to_html`` renders the MJML with MRML (``mjml-python``, no Node): tables and a mobile-
first layout whose columns stack below 480 px. The campaign stores that HTML as its body,
so everything after (sanitizing, merge tags, tracking, sending) is the HTML editor's path.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from mjml import mjml2html

from campaigns import sanitizing

MAX_BLOCKS = 100
MAX_IN_COLUMN = 10
FONTS = {
    "arial": ("Arial", "Arial, Helvetica, sans-serif"),
    "helvetica": ("Helvetica", "Helvetica, Arial, sans-serif"),
    "verdana": ("Verdana", "Verdana, Geneva, sans-serif"),
    "tahoma": ("Tahoma", "Tahoma, Geneva, sans-serif"),
    "trebuchet": ("Trebuchet MS", "'Trebuchet MS', Helvetica, sans-serif"),
    "georgia": ("Georgia", "Georgia, 'Times New Roman', serif"),
    "times": ("Times New Roman", "'Times New Roman', Times, serif"),
    "courier": ("Courier New", "'Courier New', Courier, monospace"),
}
ALIGNMENTS = ("left", "center", "right")
NETWORKS = {
    "website": "Website",
    "facebook": "Facebook",
    "instagram": "Instagram",
    "linkedin": "LinkedIn",
    "x": "X",
    "youtube": "YouTube",
    "tiktok": "TikTok",
    "mastodon": "Mastodon",
}
LABELS = {
    "heading": "Heading",
    "text": "Text",
    "image": "Image",
    "button": "Button",
    "divider": "Divider",
    "spacer": "Spacer",
    "columns": "Columns",
    "social": "Social links",
    "quote": "Quote",
    "footer": "Footer",
}
# What a column may hold: the blocks that are not themselves a row.
IN_COLUMNS = ("heading", "text", "image", "button", "divider", "spacer", "quote")

_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_MERGE_TAG = r"\{\{\s*[A-Za-z_][\w.]*\s*\}\}"
_LINK = re.compile(rf"^(?:https?://[^\s\"'<>]+|mailto:[^\s\"'<>]+|tel:[0-9+()./ -]+|{_MERGE_TAG})$")
_HOSTED = re.compile(r"^https?://[^/\s\"'<>{}]+")
_ID = re.compile(r"^[a-z0-9]{8}$")

DEFAULT_SETTINGS: dict[str, Any] = {
    "background": "#f4f5f7",
    "content_background": "#ffffff",
    "text_color": "#1f2933",
    "link_color": "#4338ca",
    "font": "arial",
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "heading": {"text": "A heading", "level": 1, "align": "left", "color": "", "padding": 16},
    "text": {"html": "<p>Write something.</p>", "align": "left", "color": "", "padding": 16},
    "image": {"src": "", "alt": "", "href": "", "width": 0, "align": "center", "padding": 16},
    "button": {
        "label": "Read more",
        "href": "",
        "background": "#4338ca",
        "color": "#ffffff",
        "align": "center",
        "radius": 6,
        "padding": 16,
    },
    "divider": {"color": "#e4e7eb", "thickness": 1, "padding": 16},
    "spacer": {"height": 24},
    "columns": {"columns": [[], []], "background": "", "padding": 8},
    "social": {"links": [], "align": "center", "padding": 16},
    "quote": {
        "text": "A few words worth repeating.",
        "cite": "",
        "color": "",
        "border": "#4338ca",
        "padding": 16,
    },
    "footer": {"text": "Add your company's details here.", "padding": 16},
}


class BlocksInvalid(Exception):
    """What is wrong, by path: ``blocks.2.href``, ``blocks.0.columns.1.0.src``."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{path}: {message}" for path, message in errors.items()))
        self.errors = errors


def new_id() -> str:
    return secrets.token_hex(4)


def new_block(kind: str) -> dict[str, Any]:
    """A block of ``kind`` with its defaults, ready to edit."""
    if kind not in DEFAULTS:
        raise BlocksInvalid({"type": f"There is no block of type “{kind}”."})
    block = {"id": new_id(), "type": kind, **_copy(DEFAULTS[kind])}
    return block


def empty_document() -> dict[str, Any]:
    return {"settings": dict(DEFAULT_SETTINGS), "blocks": []}


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


# -- checking --------------------------------------------------------------------------------


class _Checker:
    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def fail(self, path: str, message: str) -> None:
        self.errors.setdefault(path, message)

    def text(self, value: Any, path: str, *, limit: int, required: bool = False) -> str:
        if value is None:
            value = ""
        if not isinstance(value, str):
            self.fail(path, "Give text.")
            return ""
        value = value.replace("\r\n", "\n").replace("\x00", "")
        if len(value) > limit:
            self.fail(path, f"Keep it to {limit:,} characters (it has {len(value):,}).")
        if required and not value.strip():
            self.fail(path, "This cannot be empty.")
        return value

    def line(self, value: Any, path: str, *, limit: int, required: bool = False) -> str:
        value = self.text(value, path, limit=limit, required=required)
        return " ".join(value.split())

    def number(self, value: Any, path: str, *, low: int, high: int) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            self.fail(path, f"Give a whole number from {low} to {high}.")
            return low
        if (isinstance(value, float) and not value.is_integer()) or not low <= number <= high:
            self.fail(path, f"Give a whole number from {low} to {high}.")
            return max(low, min(number, high))
        return number

    def choice(self, value: Any, path: str, choices: Mapping[Any, Any] | tuple[Any, ...]) -> Any:
        # An object or a list from the JSON is no choice (and no key to look up).
        if isinstance(value, dict | list) or value not in choices:
            shown = ", ".join(str(c) for c in choices)
            self.fail(path, f"Choose one of: {shown}.")
            return next(iter(choices))
        return value

    def colour(self, value: Any, path: str, *, blank: bool = False) -> str:
        if blank and value in ("", None):
            return ""
        if not isinstance(value, str) or not _COLOUR.match(value):
            self.fail(path, "Give a colour as #rrggbb, for example #4338ca.")
            return "#000000"
        return value.lower()

    def link(self, value: Any, path: str, *, blank: bool = False) -> str:
        value = self.line(value, path, limit=2000)
        if blank and not value:
            return ""
        if not _LINK.match(value) or value in ("http://", "https://"):
            self.fail(
                path,
                "Give a full link starting with https:// (or http://, mailto:, tel:), or a "
                "merge tag such as {{ unsubscribe_url }}.",
            )
        return value

    def image(self, value: Any, path: str) -> str:
        value = self.line(value, path, limit=2000)
        if value and not _HOSTED.match(value):
            self.fail(path, "Give the image's full address, starting with https://.")
        return value


def _leaf(check: _Checker, raw: Any, path: str, kinds: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        check.fail(path, "Each block is an object with a type.")
        return {}
    kind = raw.get("type")
    if kind not in kinds:
        check.fail(f"{path}.type", f"Choose a block type among: {', '.join(kinds)}.")
        return {}
    unknown = set(raw) - {"id", "type", *DEFAULTS[kind]}
    for name in sorted(unknown):
        check.fail(f"{path}.{name}", f"A {kind} block has no “{name}”.")
    given = {**DEFAULTS[kind], **{k: v for k, v in raw.items() if k in DEFAULTS[kind]}}
    block_id = raw.get("id")
    block: dict[str, Any] = {
        "id": block_id if isinstance(block_id, str) and _ID.match(block_id) else new_id(),
        "type": kind,
    }
    p = path + "."
    if "padding" in given:
        block["padding"] = check.number(given["padding"], p + "padding", low=0, high=80)
    if "align" in given:
        block["align"] = check.choice(given["align"], p + "align", ALIGNMENTS)
    if "color" in given:
        block["color"] = check.colour(given["color"], p + "color", blank=kind != "button")
    if kind == "heading":
        block["text"] = check.line(given["text"], p + "text", limit=300, required=True)
        block["level"] = check.number(given["level"], p + "level", low=1, high=3)
    elif kind == "text":
        block["html"] = rich_text(check.text(given["html"], p + "html", limit=20_000))
    elif kind == "image":
        block["src"] = check.image(given["src"], p + "src")
        block["alt"] = check.line(given["alt"], p + "alt", limit=300)
        block["href"] = check.link(given["href"], p + "href", blank=True)
        block["width"] = check.number(given["width"], p + "width", low=0, high=600)
    elif kind == "button":
        block["label"] = check.line(given["label"], p + "label", limit=100, required=True)
        block["href"] = check.link(given["href"], p + "href", blank=True)
        block["background"] = check.colour(given["background"], p + "background")
        block["radius"] = check.number(given["radius"], p + "radius", low=0, high=40)
    elif kind == "divider":
        block["color"] = check.colour(given["color"], p + "color")
        block["thickness"] = check.number(given["thickness"], p + "thickness", low=1, high=10)
    elif kind == "spacer":
        block["height"] = check.number(given["height"], p + "height", low=4, high=200)
    elif kind == "social":
        block["links"] = _social(check, given["links"], p + "links")
    elif kind == "quote":
        block["text"] = check.text(given["text"], p + "text", limit=2000, required=True)
        block["cite"] = check.line(given["cite"], p + "cite", limit=200)
        block["border"] = check.colour(given["border"], p + "border")
    elif kind == "footer":
        block["text"] = check.text(given["text"], p + "text", limit=2000, required=True)
    return block


def _social(check: _Checker, raw: Any, path: str) -> list[dict[str, str]]:
    if not isinstance(raw, list) or len(raw) > len(NETWORKS):
        check.fail(path, f"Give a list of up to {len(NETWORKS)} links.")
        return []
    links = []
    for n, item in enumerate(raw):
        if not isinstance(item, dict):
            check.fail(f"{path}.{n}", "Each link is an object with a network and an href.")
            continue
        links.append(
            {
                "network": check.choice(item.get("network"), f"{path}.{n}.network", NETWORKS),
                "href": check.link(item.get("href"), f"{path}.{n}.href"),
            }
        )
    return links


def _block(check: _Checker, raw: Any, path: str) -> dict[str, Any]:
    if not (isinstance(raw, dict) and raw.get("type") == "columns"):
        return _leaf(check, raw, path, tuple(k for k in DEFAULTS if k != "columns"))
    unknown = set(raw) - {"id", "type", *DEFAULTS["columns"]}
    for name in sorted(unknown):
        check.fail(f"{path}.{name}", f"A columns block has no “{name}”.")
    block_id = raw.get("id")
    columns = raw.get("columns", [[], []])
    filled: list[list[dict[str, Any]]] = []
    block = {
        "id": block_id if isinstance(block_id, str) and _ID.match(block_id) else new_id(),
        "type": "columns",
        "background": check.colour(raw.get("background", ""), f"{path}.background", blank=True),
        "padding": check.number(raw.get("padding", 8), f"{path}.padding", low=0, high=80),
        "columns": filled,
    }
    if not isinstance(columns, list) or not 2 <= len(columns) <= 3:
        check.fail(f"{path}.columns", "Give two or three columns.")
        return block
    for c, column in enumerate(columns):
        if not isinstance(column, list) or len(column) > MAX_IN_COLUMN:
            check.fail(f"{path}.columns.{c}", f"A column holds up to {MAX_IN_COLUMN} blocks.")
            filled.append([])
            continue
        filled.append(
            [_leaf(check, b, f"{path}.columns.{c}.{n}", IN_COLUMNS) for n, b in enumerate(column)]
        )
    return block


def clean_document(raw: Any) -> dict[str, Any]:
    """The document with every value checked and defaults filled in; ``BlocksInvalid``
    naming each part at fault otherwise."""
    check = _Checker()
    if not isinstance(raw, dict):
        raise BlocksInvalid({"blocks": "Give an object with “settings” and “blocks”."})
    for name in sorted(set(raw) - {"settings", "blocks"}):
        check.fail(name, "A document has only “settings” and “blocks”.")
    given = raw.get("settings", {})
    if not isinstance(given, dict):
        check.fail("settings", "Give the settings as an object.")
        given = {}
    for name in sorted(set(given) - set(DEFAULT_SETTINGS)):
        check.fail(f"settings.{name}", f"There is no setting “{name}”.")
    given = {**DEFAULT_SETTINGS, **given}
    settings = {
        "background": check.colour(given["background"], "settings.background"),
        "content_background": check.colour(
            given["content_background"], "settings.content_background"
        ),
        "text_color": check.colour(given["text_color"], "settings.text_color"),
        "link_color": check.colour(given["link_color"], "settings.link_color"),
        "font": check.choice(given["font"], "settings.font", FONTS),
    }
    blocks = raw.get("blocks", [])
    if not isinstance(blocks, list):
        check.fail("blocks", "Give the blocks as a list.")
        blocks = []
    if len(blocks) > MAX_BLOCKS:
        check.fail("blocks", f"A message holds up to {MAX_BLOCKS} blocks.")
        blocks = blocks[:MAX_BLOCKS]
    cleaned = [_block(check, b, f"blocks.{n}") for n, b in enumerate(blocks)]
    if check.errors:
        raise BlocksInvalid(check.errors)
    return {"settings": settings, "blocks": cleaned}


def rich_text(value: str) -> str:
    """A text block's HTML, sanitized; plain text (no tag at all) becomes paragraphs."""
    value = value.strip()
    if not value:
        return ""
    if "<" not in value:
        paragraphs = re.split(r"\n\s*\n", value)
        value = "".join(
            "<p>" + html.escape(p.strip(), quote=False).replace("\n", "<br>") + "</p>"
            for p in paragraphs
            if p.strip()
        )
    return sanitizing.sanitize_html(value)


# -- writing ---------------------------------------------------------------------------------


def _attr(**values: object) -> str:
    """MJML attributes, escaped; those that are empty left out."""
    return "".join(
        f' {name.replace("_", "-")}="{html.escape(str(value), quote=True)}"'
        for name, value in values.items()
        if value not in ("", None)
    )


def _text(value: str) -> str:
    """Escaped text, its line breaks kept."""
    return html.escape(value, quote=False).replace("\n", "<br>")


_HEADING_SIZES = {1: 28, 2: 22, 3: 18}


def _heading(block: dict[str, Any], ctx: dict[str, Any]) -> str:
    size = _HEADING_SIZES[block["level"]]
    level = block["level"]
    return (
        f"<mj-text{_attr(align=block['align'], color=block['color'], padding=_px(block))}>"
        f'<h{level} style="margin:0;font-size:{size}px;line-height:1.25;">'
        f"{_text(block['text'])}</h{level}></mj-text>"
    )


def _rich(block: dict[str, Any], ctx: dict[str, Any]) -> str:
    attributes = _attr(align=block["align"], color=block["color"], padding=_px(block))
    return f"<mj-text{attributes}>{block['html']}</mj-text>"


def _image(block: dict[str, Any], ctx: dict[str, Any]) -> str:
    if not block["src"]:
        return ""  # not chosen yet: the pre-send checks say so
    width = f"{block['width']}px" if block["width"] else ""
    attributes = _attr(
        src=block["src"],
        alt=block["alt"],
        href=block["href"],
        width=width,
        align=block["align"],
        padding=_px(block),
    )
    return f"<mj-image{attributes} />"


def _button(block: dict[str, Any], ctx: dict[str, Any]) -> str:
    attributes = _attr(
        href=block["href"],
        background_color=block["background"],
        color=block["color"],
        border_radius=f"{block['radius']}px",
        align=block["align"],
        padding=_px(block),
        font_weight="bold",
    )
    return f"<mj-button{attributes}>{_text(block['label'])}</mj-button>"


def _divider(block: dict[str, Any], ctx: dict[str, Any]) -> str:
    attributes = _attr(
        border_color=block["color"], border_width=f"{block['thickness']}px", padding=_px(block)
    )
    return f"<mj-divider{attributes} />"


def _spacer(block: dict[str, Any], ctx: dict[str, Any]) -> str:
    height = f"{block['height']}px"
    return f"<mj-spacer{_attr(height=height)} />"


def _social_links(block: dict[str, Any], ctx: dict[str, Any]) -> str:
    # Words, not icons: no image from a third party's server is loaded for the reader.
    links = " &nbsp;·&nbsp; ".join(
        f'<a href="{html.escape(link["href"], quote=True)}">{NETWORKS[link["network"]]}</a>'
        for link in block["links"]
    )
    return f"<mj-text{_attr(align=block['align'], padding=_px(block))}>{links}</mj-text>"


def _quote(block: dict[str, Any], ctx: dict[str, Any]) -> str:
    cite = f"<br><small>— {_text(block['cite'])}</small>" if block["cite"] else ""
    return (
        f"<mj-text{_attr(color=block['color'], padding=_px(block))}>"
        f'<blockquote style="margin:0;padding:4px 0 4px 16px;border-left:4px solid '
        f'{block["border"]};font-style:italic;">{_text(block["text"])}{cite}</blockquote>'
        "</mj-text>"
    )


def _footer(block: dict[str, Any], ctx: dict[str, Any]) -> str:
    attributes = _attr(align="center", color="#6b7280", font_size="12px", padding=_px(block))
    return f"<mj-text{attributes}>{_text(block['text'])}</mj-text>"


def _px(block: dict[str, Any]) -> str:
    """Top and bottom as the block says; at the sides text keeps off the message's edges
    more than rules and images do."""
    side = "16px" if block["type"] in ("divider", "image") else "24px"
    return f"{block['padding']}px {side}"


_WRITERS: dict[str, Callable[[dict[str, Any], dict[str, Any]], str]] = {
    "heading": _heading,
    "text": _rich,
    "image": _image,
    "button": _button,
    "divider": _divider,
    "spacer": _spacer,
    "social": _social_links,
    "quote": _quote,
    "footer": _footer,
}


def to_mjml(document: dict[str, Any]) -> str:
    """The MJML of a checked document (``clean_document``)."""
    settings = document["settings"]
    font = FONTS[settings["font"]][1]
    ctx: dict[str, Any] = {}
    sections = []
    for block in document["blocks"]:
        if block["type"] == "columns":
            width = f"{100 / len(block['columns']):.4g}%"
            columns = "".join(
                f"<mj-column{_attr(width=width)}>"
                + "".join(_WRITERS[b["type"]](b, ctx) for b in column)
                + "</mj-column>"
                for column in block["columns"]
            )
            background = block["background"] or settings["content_background"]
            padding = f"{block['padding']}px 0"
            sections.append(
                f"<mj-section{_attr(background_color=background, padding=padding)}>"
                f"{columns}</mj-section>"
            )
        else:
            background = settings["content_background"]
            sections.append(
                f"<mj-section{_attr(background_color=background, padding='0')}>"
                f"<mj-column>{_WRITERS[block['type']](block, ctx)}</mj-column></mj-section>"
            )
    head = (
        "<mj-head><mj-attributes>"
        f"<mj-all{_attr(font_family=font)} />"
        f"<mj-text{_attr(color=settings['text_color'], font_size='16px', line_height='1.5')} />"
        "</mj-attributes>"
        f"<mj-style>a {{ color: {settings['link_color']}; }} p {{ margin: 0 0 12px; }}</mj-style>"
        "</mj-head>"
    )
    body = f"<mj-body{_attr(background_color=settings['background'], width='600px')}>"
    return f"<mjml>{head}{body}{''.join(sections)}</mj-body></mjml>"


def to_html(document: dict[str, Any]) -> str:
    """The responsive HTML of a checked document."""
    return str(mjml2html(to_mjml(document)))


def summary(block: dict[str, Any]) -> str:
    """A line saying what a block holds, for the editor's list."""
    kind = block["type"]
    if kind == "heading":
        return block["text"][:80]
    if kind == "text":
        return sanitizing.html_to_text(block["html"])[:80]
    if kind == "image":
        return block["alt"] or block["src"].rsplit("/", 1)[-1][:60] or "No image chosen"
    if kind == "button":
        return f"{block['label']} → {block['href']}"[:80]
    if kind == "columns":
        return f"{len(block['columns'])} columns"
    if kind == "social":
        return ", ".join(NETWORKS[link["network"]] for link in block["links"]) or "No links yet"
    if kind in ("quote", "footer"):
        return block["text"][:80]
    if kind == "spacer":
        return f"{block['height']} px"
    return ""


# -- editing ---------------------------------------------------------------------------------
# The editor's changes to a document, by block id. Each returns the changed document (a
# copy); an id that is not there is a ``KeyError``. The result is checked when saved.


def _containers(document: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """Every list that holds blocks: the document's, then each column's."""
    found = [document["blocks"]]
    for block in document["blocks"]:
        if block.get("type") == "columns":
            found.extend(column for column in block.get("columns", []) if isinstance(column, list))
    return found


def locate(document: dict[str, Any], block_id: str) -> tuple[list[dict[str, Any]], int]:
    for container in _containers(document):
        for index, block in enumerate(container):
            if block.get("id") == block_id:
                return container, index
    raise KeyError(block_id)


def find(document: dict[str, Any], block_id: str) -> dict[str, Any] | None:
    try:
        container, index = locate(document, block_id)
    except KeyError:
        return None
    return container[index]


def add(
    document: dict[str, Any],
    kind: str,
    *,
    after: str = "",
    column: tuple[str, int] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new block of ``kind`` after block ``after`` (else at the end), or at the end of a
    column of a columns block. Returns the document and the new block."""
    document = _copy(document)
    block = new_block(kind)
    if column is not None:
        parent = find(document, column[0])
        if parent is None or parent.get("type") != "columns" or kind not in IN_COLUMNS:
            raise KeyError(column[0])
        parent["columns"][column[1]].append(block)
    elif after:
        container, index = locate(document, after)
        if container is not document["blocks"] and kind not in IN_COLUMNS:
            raise KeyError(after)
        container.insert(index + 1, block)
    else:
        document["blocks"].append(block)
    return document, block


def move(document: dict[str, Any], block_id: str, step: int) -> dict[str, Any]:
    """One place up (``-1``) or down (``1``) among its neighbours."""
    document = _copy(document)
    container, index = locate(document, block_id)
    other = index + step
    if 0 <= other < len(container):
        container[index], container[other] = container[other], container[index]
    return document


def _renamed(block: dict[str, Any]) -> dict[str, Any]:
    block = {**_copy(block), "id": new_id()}
    if block.get("type") == "columns":
        block["columns"] = [[_renamed(b) for b in column] for column in block["columns"]]
    return block


def duplicate(document: dict[str, Any], block_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A copy of the block (with new ids) just after it."""
    document = _copy(document)
    container, index = locate(document, block_id)
    copy = _renamed(container[index])
    container.insert(index + 1, copy)
    return document, copy


def remove(document: dict[str, Any], block_id: str) -> dict[str, Any]:
    document = _copy(document)
    container, index = locate(document, block_id)
    del container[index]
    return document


def change(document: dict[str, Any], block_id: str, values: dict[str, Any]) -> dict[str, Any]:
    """The block's fields replaced by ``values`` (its id and type stay)."""
    document = _copy(document)
    container, index = locate(document, block_id)
    block = container[index]
    if block["type"] == "columns":
        count = values.pop("count", len(block["columns"]))
        columns = [*block["columns"], [], []][: max(2, min(int(count), 3))]
        # A column taken away gives its blocks to the last one kept.
        for extra in block["columns"][len(columns) :]:
            columns[-1].extend(extra)
        values["columns"] = columns
    container[index] = {**block, **values, "id": block["id"], "type": block["type"]}
    return document
