"""Merge-tag rendering: a 20 KB newsletter rendered per recipient, against str.replace.

The template is compiled once, as the sending pipeline does per batch, then rendered for
RENDERS recipients; the baseline substitutes the same ten values with ``str.replace`` on
the same HTML in the same run. No database is needed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from benchmarks.harness import Figure

RENDERS = int(os.environ.get("BENCH_RENDERS", "20000"))

_TAGS = {
    "{{ first_name }}": "first_name",
    "{{ last_name }}": "last_name",
    "{{ email }}": "email",
    "{{ attributes.city }}": "city",
    "{{ attributes.plan }}": "plan",
    "{{ account_name }}": "account_name",
    "{{ postal_address }}": "postal_address",
    "{{ view_in_browser_url }}": "view_in_browser_url",
    "{{ preferences_url }}": "preferences_url",
    "{{ unsubscribe_url }}": "unsubscribe_url",
}

_ARTICLE = """
<tr><td style="padding:24px 32px;font-family:Arial,Helvetica,sans-serif;font-size:16px;
line-height:1.5;color:#1f2933" class="article">
<h2 style="margin:0 0 12px;font-size:20px;color:#111827">Article {n}: what is new this month</h2>
<p style="margin:0 0 12px">Lorem ipsum dolor sit amet, consectetur adipiscing elit. Integer
posuere erat a ante venenatis dapibus posuere velit aliquet. Cras mattis consectetur purus sit
amet fermentum. Donec ullamcorper nulla non metus auctor fringilla.</p>
<p style="margin:0"><a href="https://blog.example.com/articles/{n}?utm_source=newsletter"
style="color:#2563eb;text-decoration:underline">Read article {n}</a></p>
</td></tr>"""


def newsletter() -> str:
    """About 20 KB of table-based newsletter HTML with ten merge tags."""
    articles = "".join(_ARTICLE.format(n=n) for n in range(30))
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8">
<style>@media (max-width:600px){{.wrap{{width:100%!important}}}}</style></head>
<body style="margin:0;background:#f4f5f7">
<table width="100%" cellpadding="0" cellspacing="0" border="0" bgcolor="#f4f5f7"><tr><td>
<table class="wrap" width="600" align="center" cellpadding="0" cellspacing="0" border="0"
bgcolor="#ffffff">
<tr><td style="padding:8px 32px;font-size:12px"><a href="{{{{ view_in_browser_url }}}}">View in
your browser</a></td></tr>
<tr><td style="padding:32px"><h1>Hi {{{{ first_name }}}} {{{{ last_name }}}},</h1>
<p>Here is your {{{{ attributes.plan }}}} digest for {{{{ attributes.city }}}}, sent to
{{{{ email }}}}.</p></td></tr>
{articles}
<tr><td style="padding:24px 32px;font-size:12px;color:#6b7280;text-align:center">
{{{{ account_name }}}} · {{{{ postal_address }}}}<br>
<a href="{{{{ preferences_url }}}}">Preferences</a> ·
<a href="{{{{ unsubscribe_url }}}}">Unsubscribe</a></td></tr>
</table></td></tr></table></body></html>"""


def _values(n: int) -> dict[str, object]:
    return {
        "first_name": f"Jane{n}",
        "last_name": "Doe",
        "email": f"jane{n}@example.com",
        "attributes": {"city": "Lisbon", "plan": "Premium"},
        "account_name": "Acme Ltd",
        "postal_address": "1 Example Street, Springfield",
        "view_in_browser_url": f"https://mail.example.com/v/{n:032x}",
        "preferences_url": f"https://mail.example.com/p/{n:032x}",
        "unsubscribe_url": f"https://mail.example.com/u/{n:032x}",
    }


def _flat(values: dict[str, object]) -> dict[str, str]:
    attributes = values["attributes"]
    assert isinstance(attributes, dict)
    return {k: str(v) for k, v in values.items() if k != "attributes"} | {
        k: str(v) for k, v in attributes.items()
    }


def _replace(html: str, values: dict[str, object]) -> str:
    flat = _flat(values)
    for tag, key in _TAGS.items():
        html = html.replace(tag, flat[key])
    return html


def _per_second(
    render: Callable[[dict[str, object]], str], values: list[dict[str, object]]
) -> float:
    started = time.perf_counter()
    for value in values:
        render(value)
    return len(values) / (time.perf_counter() - started)


def run() -> list[Figure]:
    from campaigns.rendering import compile_template

    html = newsletter()
    values = [_values(n) for n in range(RENDERS)]
    compiled = compile_template(html, autoescape=True)
    assert compiled.render(values[0]).count("Jane0") == _replace(html, values[0]).count("Jane0")

    # warm both paths, then time them back to back
    _per_second(compiled.render, values[:200])
    _per_second(lambda v: _replace(html, v), values[:200])
    rendered = _per_second(compiled.render, values)
    replaced = _per_second(lambda v: _replace(html, v), values)
    print(
        f"{len(html) / 1024:.1f} KB, {len(_TAGS)} merge tags, {RENDERS} renders: "
        f"{rendered:,.0f}/s rendered, {replaced:,.0f}/s str.replace, "
        f"ratio {rendered / replaced:.3f}"
    )
    return [
        Figure(
            "merge-tag render (HTML, autoescape)",
            rendered,
            "str.replace",
            replaced,
            "/s",
            target="well above the sending rate (hundreds per second)",
        )
    ]
