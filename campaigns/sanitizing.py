"""Customer HTML made safe to store and send, and the derived parts of a message.

Guarantees:
- ``sanitize_html`` keeps only what an email newsletter needs (layout tables, text markup,
  links, images, inline styles, classes and ``<style>`` blocks) and removes everything that
  runs or submits: scripts, event handlers, forms and their fields, frames, objects,
  embeds, comments (but for Outlook's conditional "ghost tables" of table tags alone,
  which MJML's columns need there), and URLs whose scheme is not http, https, mailto or
  tel. ``data:`` URLs
  survive only as ``<img src>`` of a PNG, GIF, JPEG or WebP image.
- CSS, in ``<style>`` blocks and ``style`` attributes, never carries ``@import``,
  ``expression(``, ``javascript:``/``vbscript:``, bindings, backslash escapes (they can
  spell any of those) or ``url()`` with another scheme; a ``<style>`` block can never
  close itself early, because ``<`` is removed from it.
- Merge tags (``{{ first_name }}``, ``{% if … %}``) come out exactly as they went in, in
  text and in attribute values such as ``href="{{ unsubscribe_url }}"``: they are swapped
  for inert placeholders before parsing and put back afterwards. They are put back
  verbatim, so the sanitized HTML is only safe once rendered by ``campaigns.rendering``,
  which escapes every value and literal it outputs.
- Merge-tag comments (``{# … #}``) are kept, but with ``< > " '`` escaped inside them:
  the parser never sees what a comment encloses, so a ``<script>`` or half of an
  ``<a href>`` in one would otherwise be stored raw. They render as nothing either way.
- ``inline_css`` never fetches anything over the network and never raises: on a failure
  it logs and returns its input unchanged.
- ``html_to_text`` and ``extract_links`` only read; they never fail on malformed HTML.
"""

from __future__ import annotations

import html as html_lib
import logging
import re
import secrets
from collections.abc import Callable
from html.parser import HTMLParser
from urllib.parse import urlsplit

import css_inline
import nh3
from django.template.base import tag_re

logger = logging.getLogger(__name__)

_LAYOUT = {"width", "height", "align", "valign", "bgcolor", "style"}
ALLOWED_TAGS: frozenset[str] = frozenset(
    {
        *("table", "thead", "tbody", "tfoot", "tr", "td", "th", "caption"),
        *("div", "span", "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6"),
        *("ul", "ol", "li", "blockquote", "pre", "code"),
        *("strong", "b", "em", "i", "u", "s", "small", "sup", "sub", "center", "font"),
        *("a", "img"),
    }
)
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"style", "class", "align"},
    "table": _LAYOUT | {"cellpadding", "cellspacing", "border"},
    "tr": _LAYOUT,
    "td": _LAYOUT | {"colspan", "rowspan"},
    "th": _LAYOUT | {"colspan", "rowspan"},
    "a": {"href", "title", "target", "name"},
    "img": {"src", "alt", "width", "height", "border"},
    "font": {"color", "face", "size"},
    "hr": {"width", "size", "color"},
    "div": {"bgcolor"},
}
URL_SCHEMES: frozenset[str] = frozenset({"http", "https", "mailto", "tel"})

# Removed with everything inside them; the other unknown tags are dropped but keep their text.
_REMOVED_WITH_CONTENT = frozenset(
    {
        *("script", "style", "title", "template", "noscript", "textarea", "select", "button"),
        *("iframe", "frame", "frameset", "object", "embed", "applet", "noembed", "noframes"),
        *("xmp", "plaintext", "svg", "math", "audio", "video", "canvas"),
    }
)
_DATA_IMAGE = re.compile(r"data:image/(?:png|gif|jpeg|jpg|webp)[;,]", re.IGNORECASE)


# -- merge tags ------------------------------------------------------------------------------


class _Protected:
    """HTML whose merge tags are replaced by placeholders the HTML parsers leave alone.

    Between elements a merge tag becomes a comment: a parser moves text found directly in a
    ``<table>`` out of it, which would pull ``{% if %}`` away from the row it guards, but it
    keeps comments in place. Inside a tag or a raw-text element (``<style>``) it becomes a
    lowercase word that is valid in any attribute value, URL or stylesheet.
    """

    _SCAN = re.compile(
        r"<!--.*?-->"
        r"|<(style|script|title|textarea)\b[^>]*>.*?</\1\s*>"
        r"""|<[a-zA-Z/!?](?:"[^"]*"|'[^']*'|[^'">])*>""",
        re.IGNORECASE | re.DOTALL,
    )

    def __init__(self, html: str) -> None:
        self.nonce = secrets.token_hex(8)
        self.originals: list[str] = []
        self._word = re.compile(rf"mt{self.nonce}q(\d+)q")
        words = _GHOST_TABLE.sub(self._hide_ghost, html)
        words = tag_re.sub(self._hide, words)
        self.html = self._as_comments_between_elements(words)

    def _hide_ghost(self, match: re.Match[str]) -> str:
        """Outlook's ghost tables (MJML's columns in Outlook for Windows) are kept as
        they are when they hold table markup and nothing else; any other conditional
        comment is a comment, and goes."""
        return self._hide(match) if _is_ghost_table(match.group(1)) else match.group(0)

    def _hide(self, match: re.Match[str]) -> str:
        self.originals.append(match.group(0))
        return f"mt{self.nonce}q{len(self.originals) - 1}q"

    def _as_comments_between_elements(self, words: str) -> str:
        out: list[str] = []
        position = 0
        for markup in self._SCAN.finditer(words):
            out.append(self._word.sub(r"<!--\g<0>-->", words[position : markup.start()]))
            out.append(markup.group(0))
            position = markup.end()
        out.append(self._word.sub(r"<!--\g<0>-->", words[position:]))
        return "".join(out)

    def drop_other_comments(self, html: str) -> str:
        # Serialized HTML escapes "<" in text and attribute values, so "<!--" here always
        # opens a real comment.
        return re.sub(rf"<!--(?!mt{self.nonce}q\d+q-->).*?-->", "", html, flags=re.DOTALL)

    def restore(self, html: str) -> str:
        if not self.originals:
            return html

        def original(match: re.Match[str]) -> str:
            return self.originals[int(match.group(1) or match.group(2))]

        pattern = rf"<!--mt{self.nonce}q(\d+)q-->|mt{self.nonce}q(\d+)q"
        return re.sub(pattern, original, html)


# Outlook for Windows reads "conditional comments"; MJML puts the tables that hold its
# columns side by side there. Kept only when they hold table tags with plain attributes
# (a style without anything CSS could fetch or run), whitespace and &nbsp;.
_GHOST_TABLE = re.compile(r"<!--\[if mso \| IE\]>(.*?)<!\[endif\]-->", re.DOTALL)
_GHOST_PIECE = re.compile(
    r"""\s*(?:</?(?:table|tbody|tr|td)"""
    r"""(?:\s+(?:align|bgcolor|border|cellpadding|cellspacing|class|height|role|style|valign|width)"""
    r"""(?:="[^"<>\\]*")?)*\s*/?>|&nbsp;)""",
    re.IGNORECASE,
)


def _is_ghost_table(content: str) -> bool:
    position, content = 0, content.rstrip()
    while position < len(content):
        piece = _GHOST_PIECE.match(content, position)
        if piece is None:
            return False
        position = piece.end()
    return not (_CSS_DANGER.search(content) or "url(" in content.lower())


# -- CSS -------------------------------------------------------------------------------------

_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_CSS_DANGER = re.compile(
    r"@import|expression\s*\(|javascript\s*:|vbscript\s*:|-moz-binding|behaviou?r\s*:|\\",
    re.IGNORECASE,
)
_CSS_URL = re.compile(r"""url\(\s*['"]?\s*([^'")\s]*)""", re.IGNORECASE)
# A declaration, selector or at-rule prelude (a ";" inside url() or a string does not end
# it), or one of the characters between them.
_CSS_PIECE = re.compile(r"""(?:url\([^)]*\)|"[^"]*"|'[^']*'|[^;{}"'])+|[;{}]|.""", re.I | re.S)
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")


def _css_piece_is_safe(piece: str) -> bool:
    if _CSS_DANGER.search(piece):
        return False
    for target in _CSS_URL.findall(piece):
        scheme = _SCHEME.match(target)
        if scheme is None or scheme.group(1).lower() in ("http", "https"):
            continue
        if not _DATA_IMAGE.match(target):
            return False
    return True


def clean_css(css: str) -> str:
    """A stylesheet or a ``style`` attribute without what could load or run anything.

    Works on the pieces between ``;``, ``{`` and ``}``: a declaration, selector or at-rule
    prelude that is dangerous is dropped, the rest of the sheet is kept.
    """
    css = _CSS_COMMENT.sub("", css).replace("<", "")
    kept: list[str] = []
    dropped = False
    for piece in _CSS_PIECE.findall(css):
        if piece in ("{", "}") or (piece == ";" and not dropped):
            kept.append(piece)
        dropped = piece not in (";", "{", "}") and not _css_piece_is_safe(piece)
        if not dropped and piece not in (";", "{", "}"):
            kept.append(piece)
    return "".join(kept)


# -- sanitize_html ---------------------------------------------------------------------------

_STYLE_BLOCK = re.compile(r"<style\b[^>]*>(.*?)</style\s*>", re.IGNORECASE | re.DOTALL)
_BODY_TAG = re.compile(r"""<body\b((?:"[^"]*"|'[^']*'|[^'">])*)>""", re.IGNORECASE)
_DOCUMENT = re.compile(r"<(?:html|head|body)\b", re.IGNORECASE)
_BGCOLOR = re.compile(r"^#?[0-9a-zA-Z]{1,32}$")
_CLASSES = re.compile(r"^[\w\- ]*$")
_URL_ATTRIBUTES = frozenset({"href", "src"})


def _filter_attribute(element: str, attribute: str, value: str) -> str | None:
    if attribute == "style":
        return clean_css(value).strip() or None
    if attribute in _URL_ATTRIBUTES and value.strip().lower().startswith("data:"):
        allowed = element == "img" and attribute == "src" and _DATA_IMAGE.match(value.strip())
        return value if allowed else None
    return value


def _body_attributes(tag: str) -> str:
    """The harmless attributes of the ``<body>`` tag, which fragment parsing would drop."""
    collected: list[tuple[str, str | None]] = []

    class _Body(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            collected.extend(attrs)

    _Body().feed(f"<body{tag}>")
    kept = []
    for name, value in collected:
        if value is None:
            continue
        if name == "style":
            value = clean_css(value).strip()
        elif (
            (name == "bgcolor" and not _BGCOLOR.match(value))
            or (name == "class" and not _CLASSES.match(value))
            or name not in ("bgcolor", "class")
        ):
            continue
        if value:
            kept.append(f' {name}="{html_lib.escape(value, quote=True)}"')
    return "".join(kept)


# Not "&": escaping twice would change a comment each time the HTML is saved again.
_COMMENT_ESCAPES = str.maketrans({"<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"})


def _inert_comment(match: re.Match[str]) -> str:
    # Found the way the template lexer finds tags, so a "{#" inside another tag is no
    # comment here either.
    tag = match.group(0)
    return tag.translate(_COMMENT_ESCAPES) if tag.startswith("{#") else tag


def sanitize_html(html: str) -> str:
    """Customer HTML reduced to what an email newsletter needs; merge tags kept as typed.

    A whole document (with ``<html>``, ``<head>`` or ``<body>``) comes back as a document
    with its ``<style>`` blocks in the head; a fragment comes back as a fragment.
    """
    html = tag_re.sub(_inert_comment, html)
    protected = _Protected(html)
    source = protected.html
    styles = [clean_css(css).strip() for css in _STYLE_BLOCK.findall(source)]
    source = _STYLE_BLOCK.sub("", source)
    body = _BODY_TAG.search(source)

    cleaned = nh3.clean(
        source,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(_REMOVED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_filter_attribute,
        url_schemes=set(URL_SCHEMES | {"data"}),
        # Kept so that merge-tag placeholders between elements survive; every other
        # comment is dropped below.
        strip_comments=False,
    )
    cleaned = protected.drop_other_comments(cleaned)

    style_html = "".join(f"<style>{css}</style>" for css in styles if css)
    if _DOCUMENT.search(html):
        attributes = _body_attributes(body.group(1)) if body else ""
        cleaned = (
            '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"{style_html}\n</head>\n<body{attributes}>\n{cleaned}\n</body>\n</html>\n"
        )
    else:
        cleaned = style_html + cleaned
    return protected.restore(cleaned)


# -- inline_css ------------------------------------------------------------------------------

_INLINER = css_inline.CSSInliner(
    load_remote_stylesheets=False,
    # Media queries cannot be inlined: the <style> blocks stay for the clients that read them.
    keep_style_tags=True,
)


def inline_css(html: str) -> str:
    """The ``<style>`` rules copied into ``style`` attributes; ``<style>`` blocks kept.

    Remote stylesheets are never fetched (``<link>`` tags are dropped). Merge tags are
    protected like in ``sanitize_html``. On any failure the input comes back unchanged.
    """
    protected = _Protected(html)
    try:
        inlined = _INLINER.inline(protected.html)
    # The inliner is native code fed customer CSS: whatever it raises, sending goes on
    # with the styles left in the <style> blocks.
    except Exception:
        logger.warning("CSS inlining failed; sending the HTML as it is", exc_info=True)
        return html
    return protected.restore(inlined)


# -- html_to_text ----------------------------------------------------------------------------

_PARAGRAPH = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "hr"}
)
_LINE = frozenset(
    {"div", "tr", "br", "center", "dt", "dd", "section", "article", "header", "footer"}
)
_SKIPPED = frozenset({"script", "style", "head", "title", "template", "noscript"})
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u034f\ufeff\u00ad"))


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.pending = 0  # line breaks owed before the next text: 1 a new line, 2 a blank one
        self.skipping = 0
        self.pre = 0
        self.links: list[tuple[str, int]] = []
        self.lists: list[list[int]] = []  # per open list: [next number] or [] for bullets

    def _break(self, lines: int) -> None:
        self.pending = max(self.pending, lines)

    def _write(self, text: str) -> None:
        if self.pending:
            if not text.strip():
                return
            self.parts.append("\n" * self.pending)
            self.pending = 0
        self.parts.append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self.skipping += 1
        elif tag in _PARAGRAPH:
            self._break(2)
            if tag in ("ul", "ol"):
                self.lists.append([1] if tag == "ol" else [])
            elif tag == "pre":
                self.pre += 1
        elif tag in _LINE:
            self._break(1)
        elif tag == "li":
            self._break(1)
            self._write(self._bullet())
        elif tag in ("td", "th"):
            self._write(" ")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt and alt.strip():
                self._write(f" {alt.strip()} ")
        elif tag == "a":
            self.links.append(((dict(attrs).get("href") or "").strip(), len(self.parts)))

    def _bullet(self) -> str:
        if not self.lists or not self.lists[-1]:
            return "- "
        number = self.lists[-1][0]
        self.lists[-1][0] += 1
        return f"{number}. "

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in ("br", "hr", "img"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _PARAGRAPH:
            self._break(2)
            if tag in ("ul", "ol") and self.lists:
                self.lists.pop()
            elif tag == "pre":
                self.pre = max(0, self.pre - 1)
        elif tag in _LINE or tag == "li":
            self._break(1)
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            text = " ".join("".join(self.parts[start:]).split())
            if _shows_url(href, text):
                self._write(f" ({href})" if text else href)

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        data = data.translate(_INVISIBLE)
        self._write(data if self.pre else re.sub(r"\s+", " ", data))

    def text(self) -> str:
        lines = [line.strip() for line in "".join(self.parts).splitlines()]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _shows_url(href: str, text: str) -> bool:
    if not href or href.startswith("#"):
        return False
    return text not in (href, href.removeprefix("mailto:"), href.removeprefix("tel:"))


def html_to_text(html: str) -> str:
    """A readable plain-text part: blocks on their own lines, links as ``text (url)``.

    Merge tags are hidden from the parser as plain words and put back in the text: a
    quoted default inside an attribute (``href="…{{ x|default:"y" }}"``) would otherwise
    end the attribute halfway through the tag."""
    nonce = secrets.token_hex(8)
    originals: list[str] = []

    def hide(match: re.Match[str]) -> str:
        originals.append(match.group(0))
        return f"mt{nonce}q{len(originals) - 1}q"

    extractor = _TextExtractor()
    extractor.feed(tag_re.sub(hide, html))
    extractor.close()
    return re.sub(rf"mt{nonce}q(\d+)q", lambda m: originals[int(m.group(1))], extractor.text())


# -- extract_links ---------------------------------------------------------------------------


class _LinkCollector(HTMLParser):
    def __init__(self, keep: Callable[[str], bool]) -> None:
        super().__init__(convert_charrefs=True)
        self.keep = keep
        self.links: dict[str, None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "a":
            return
        href = (dict(attrs).get("href") or "").strip()
        if href and self.keep(href):
            self.links.setdefault(href, None)


def _is_trackable(href: str) -> bool:
    if "{{" in href or "{%" in href:
        return False
    try:
        return urlsplit(href).scheme.lower() in ("http", "https")
    except ValueError:
        return False


def extract_links(html: str) -> list[str]:
    """The distinct http(s) targets of ``<a href>``, in document order, merge-tag URLs left out."""
    collector = _LinkCollector(_is_trackable)
    collector.feed(html)
    collector.close()
    return list(collector.links)


# -- rewrite_links ---------------------------------------------------------------------------

_ANCHOR_HREF = re.compile(r"""(<a\b[^>]*?\shref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)


def rewrite_links(html: str, replacement: Callable[[str], str | None]) -> str:
    """Each ``<a href>`` whose target ``replacement`` maps to a string gets that string as
    its new (already HTML-safe) attribute value; other links are left as they are."""

    def swap(match: re.Match[str]) -> str:
        new = replacement(html_lib.unescape(match.group(3)).strip())
        if new is None:
            return match.group(0)
        return f"{match.group(1)}{match.group(2)}{new}{match.group(2)}"

    return _ANCHOR_HREF.sub(swap, html)
