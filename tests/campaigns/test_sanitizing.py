"""Customer HTML: what runs or submits is removed, what a newsletter needs is kept, merge
tags survive; CSS inlined without fetching anything; the text part and the links."""

from __future__ import annotations

import contextlib
import multiprocessing
from http.server import BaseHTTPRequestHandler, HTTPServer

import css_inline
import pytest

from campaigns import sanitizing
from campaigns.sanitizing import extract_links, html_to_text, inline_css, sanitize_html
from tests.workers import wait_until

# -- sanitize_html: what goes --------------------------------------------------------------


def test_it_removes_scripts_and_their_content():
    clean = sanitize_html('<p>Hi</p><script>alert("x")</script><SCRIPT src="//x.js"></SCRIPT>')

    assert clean == "<p>Hi</p>"


def test_it_removes_event_handlers():
    clean = sanitize_html(
        '<p onclick="steal()">Hi</p><img src="https://x.example/a.png" onerror="steal()">'
        '<a href="https://x.example" onMouseOver="steal()">x</a>'
    )

    assert "steal" not in clean
    assert "on" not in clean.replace("noopener", "")
    assert '<img src="https://x.example/a.png">' in clean


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "vbscript:msgbox(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "file:///etc/passwd",
    ],
)
def test_it_removes_links_with_a_dangerous_scheme(href):
    clean = sanitize_html(f'<a href="{href}">click</a>')

    assert "href" not in clean
    assert "click" in clean


@pytest.mark.parametrize(
    "href", ["https://example.com/a?b=1", "http://example.com", "mailto:a@example.com", "tel:+1"]
)
def test_it_keeps_links_with_an_allowed_scheme(href):
    clean = sanitize_html(f'<a href="{href}" title="t" target="_blank">x</a>')

    assert f'href="{href.replace("&", "&amp;")}"' in clean
    assert 'title="t"' in clean
    assert 'target="_blank"' in clean


@pytest.mark.parametrize(
    "html",
    [
        '<iframe src="https://evil.example">inside</iframe>',
        '<object data="x.swf">inside</object>',
        '<embed src="x.swf">',
        "<svg><script>inside</script></svg>",
    ],
)
def test_it_removes_frames_objects_and_embeds(html):
    clean = sanitize_html(f"<p>before</p>{html}<p>after</p>")

    assert clean == "<p>before</p><p>after</p>"


def test_it_removes_forms_and_their_fields():
    clean = sanitize_html(
        '<form action="https://evil.example" method="post"><p>Your password</p>'
        '<input type="password" name="p"><textarea>t</textarea>'
        "<select><option>o</option></select><button>Send</button></form>"
    )

    assert clean == "<p>Your password</p>"


def test_it_keeps_data_images_and_removes_other_data_urls():
    png = "data:image/png;base64,iVBORw0KGgo="
    clean = sanitize_html(
        f'<img src="{png}" alt="dot"><img src="data:image/svg+xml;base64,PHN2Zz4=">'
        '<img src="data:text/html,x"><a href="data:image/png;base64,iVBORw0KGgo=">a</a>'
    )

    assert f'<img src="{png}" alt="dot">' in clean
    assert clean.count("data:") == 1


def test_it_removes_comments():
    clean = sanitize_html("<p>a<!-- internal note --></p><!--[if mso]><b>x</b><![endif]-->")

    assert clean == "<p>a</p>"


# -- sanitize_html: what stays ---------------------------------------------------------------


def test_it_keeps_the_markup_a_newsletter_needs():
    html = (
        '<table width="600" align="center" bgcolor="#ffffff" cellpadding="0" cellspacing="0" '
        'border="0" style="margin:0 auto" class="wrap"><tbody><tr>'
        '<td valign="top" colspan="2" style="padding:8px"><h1>Title</h1>'
        '<p class="lead"><strong>b</strong> <em>i</em> <u>u</u> <s>s</s> <small>s</small> '
        "<sup>1</sup><sub>2</sub></p><ul><li>one</li></ul><ol><li>two</li></ol>"
        "<blockquote>q</blockquote><pre><code>c</code></pre><hr><center>c</center>"
        '<font color="#333" face="Arial">f</font>'
        '<img src="https://cdn.example/logo.png" alt="Logo" width="120" height="40" border="0" '
        'style="display:block"></td></tr></tbody></table>'
    )

    assert sanitize_html(html) == html


@pytest.mark.parametrize(
    "html",
    [
        "<p>Hi {{ first_name }},</p>",
        '<p>Hi {{ first_name|default:"friend" }}</p>',
        '<a href="{{ unsubscribe_url }}">Unsubscribe</a>',
        '<a href="{{ view_in_browser_url }}" title="{{ account_name }}">View</a>',
        '<a href="https://shop.example/?ref={{ email }}">Shop</a>',
        '<img src="{{ attributes.avatar }}" alt="{{ full_name }}">',
        '<p style="color:{{ attributes.colour }}">x</p>',
        "<p>{% if first_name %}Hi {{ first_name }}{% else %}Hello{% endif %}</p>",
        "<p>{# a note for the team #}</p>",
    ],
)
def test_it_keeps_merge_tags_unchanged(html):
    clean = sanitize_html(html)

    # (links get rel="noopener noreferrer", which webmail opened in a browser respects)
    assert clean.replace(' rel="noopener noreferrer"', "") == html


def test_it_keeps_an_unsubscribe_href_exactly():
    clean = sanitize_html('<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>')

    assert 'href="{{ unsubscribe_url }}"' in clean


def test_it_keeps_an_if_around_table_rows_in_place():
    # a parser moves text found directly inside a table out of it
    html = (
        "<table><tbody><tr><td>always</td></tr>{% if attributes.vip %}"
        "<tr><td>VIP</td></tr>{% endif %}</tbody></table>"
    )

    assert sanitize_html(html) == html


def test_it_does_not_restore_a_merge_tag_inside_a_removed_attribute():
    clean = sanitize_html('<p onclick="{{ first_name }}">x</p>')

    assert clean == "<p>x</p>"


def test_it_keeps_style_blocks_with_media_queries():
    clean = sanitize_html(
        "<html><head><style>.wrap{width:600px} "
        "@media (max-width:600px){.wrap{width:100%!important}}</style></head>"
        "<body><div class='wrap'>x</div></body></html>"
    )

    assert "<style>.wrap{width:600px} @media (max-width:600px){.wrap{width:100%!important}}" in (
        clean
    )
    assert clean.index("<style>") < clean.index("</head>")


@pytest.mark.parametrize(
    ("css", "gone"),
    [
        ('@import url("https://evil.example/x.css"); p{color:red}', "@import"),
        ("p{width:expression(alert(1))}", "expression"),
        ("p{background:url(javascript:alert(1))}", "javascript"),
        ("p{background:url('vbscript:x')}", "vbscript"),
        ("p{background:url(data:text/html,x)}", "data:"),
        ("p{width:expr/**/ession(alert(1))}", "ession"),
        ("p{width:\\65 xpression(alert(1))}", "xpression"),
        ("p{-moz-binding:url(https://evil.example/x.xml)}", "binding"),
        ("p{color:red}</style><script>alert(1)</script>", "</style><script>"),
    ],
)
def test_it_removes_what_is_dangerous_from_style_blocks(css, gone):
    clean = sanitize_html(f"<html><head><style>{css}</style></head><body>x</body></html>")

    assert gone not in clean
    assert "<script>" not in clean
    assert clean.count("</style>") == 1


def test_it_keeps_safe_urls_in_css():
    css = "p{background:url(https://cdn.example/a.png)}td{background:url(data:image/gif;base64,R0)}"

    clean = sanitize_html(f"<style>{css}</style><p>x</p>")

    assert f"<style>{css}</style>" in clean


def test_it_cleans_style_attributes():
    clean = sanitize_html(
        '<p style="color:red;background:url(javascript:alert(1));width:expression(1)">x</p>'
    )

    assert clean == '<p style="color:red;">x</p>'


def test_it_returns_a_document_for_a_document_and_a_fragment_for_a_fragment():
    document = sanitize_html(
        '<!DOCTYPE html><html><head><title>T</title></head><body bgcolor="#f4f5f7" '
        'style="margin:0" onload="steal()"><p>x</p></body></html>'
    )
    fragment = sanitize_html("<p>x</p>")

    assert document.startswith("<!DOCTYPE html>")
    assert '<body bgcolor="#f4f5f7" style="margin:0">' in document
    assert "steal" not in document
    assert "<title>" not in document
    assert fragment == "<p>x</p>"


def test_it_does_not_trust_a_placeholder_written_by_the_customer():
    clean = sanitize_html("<p>mt0123456789abcdefq0q <!--mt0123456789abcdefq0q--></p>")

    assert clean == "<p>mt0123456789abcdefq0q </p>"


# -- inline_css -----------------------------------------------------------------------------


def test_it_inlines_rules_and_keeps_media_queries():
    html = sanitize_html(
        "<html><head><style>p{color:#111} "
        "@media (max-width:600px){p{font-size:18px}}</style></head>"
        "<body><p>Hi {{ first_name }}</p></body></html>"
    )

    inlined = inline_css(html)

    assert '<p style="color: #111;">Hi {{ first_name }}</p>' in inlined
    assert "@media (max-width:600px){p{font-size:18px}}" in inlined


def test_it_keeps_merge_tags_when_inlining():
    html = (
        "<html><head><style>td{color:red}</style></head><body><table><tbody>"
        '<tr><td>a</td></tr>{% if first_name %}<tr><td><a href="{{ unsubscribe_url }}">u</a>'
        "</td></tr>{% endif %}</tbody></table></body></html>"
    )

    inlined = inline_css(html)

    assert (
        '<tr><td style="color: red;">a</td></tr>{% if first_name %}<tr><td style="color: red;">'
        '<a href="{{ unsubscribe_url }}">u</a></td></tr>{% endif %}'
    ) in inlined


@pytest.fixture
def stylesheet_server():
    """A stylesheet server in its own process that counts its requests. (In a thread it
    would wait for the GIL, which css-inline holds while it fetches.)"""
    requests = multiprocessing.get_context("fork").Value("i", 0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            with requests.get_lock():
                requests.value += 1
            body = b"p{color:red}"
            self.send_response(200)
            self.send_header("Content-Type", "text/css")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(body)

        def log_message(self, *args):
            """Quiet: a request here would already fail the test below."""

    server = HTTPServer(("127.0.0.1", 0), Handler)
    process = multiprocessing.get_context("fork").Process(target=server.serve_forever, daemon=True)
    process.start()
    yield f"http://127.0.0.1:{server.server_port}/style.css", requests
    process.terminate()
    process.join(5)
    server.server_close()


def test_it_never_fetches_a_remote_stylesheet(stylesheet_server):
    # given a stylesheet server that counts its requests, and proof it would be reached
    url, requests = stylesheet_server
    html = f'<html><head><link rel="stylesheet" href="{url}"></head><body><p>x</p></body></html>'
    with contextlib.suppress(css_inline.InlineError):
        css_inline.CSSInliner(load_remote_stylesheets=True).inline(html)
    # (the server thread may record the request just after the client has given up)
    wait_until(lambda: requests.value, timeout=5, every=0.01, message="the stylesheet request")
    assert requests.value == 1

    # when Missive inlines the same HTML
    inlined = inline_css(html)

    # then nothing more is fetched, and the remote rule is not applied
    assert requests.value == 1
    assert "color" not in inlined


def test_it_returns_the_input_when_inlining_fails(monkeypatch, caplog):
    class Broken:
        def inline(self, html: str) -> str:
            raise css_inline.InlineError("bad CSS")

    monkeypatch.setattr(sanitizing, "_INLINER", Broken())
    html = "<style>p{color:</style><p>x</p>"

    assert inline_css(html) == html
    assert "CSS inlining failed" in caplog.text


def test_it_does_not_raise_on_broken_css():
    html = "<html><head><style>p{color:;;}}} @media {</style></head><body><p>x</p></body></html>"

    assert "<p" in inline_css(html)


# -- html_to_text ---------------------------------------------------------------------------


def test_it_makes_a_readable_text_part():
    html = (
        "<html><head><title>Ignored</title><style>p{color:red}</style></head><body>"
        "<h1>May news</h1><p>Hi {{ first_name }},\n   here is   what's new.</p>"
        "<ul><li>One</li><li>Two</li></ul><ol><li>First</li><li>Second</li></ol>"
        '<p>Read <a href="https://example.com/blog">our blog</a> or '
        '<a href="https://example.com">https://example.com</a>.</p>'
        '<p><img src="https://cdn.example/logo.png" alt="Acme logo"></p>'
        '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> &middot; '
        '<a href="mailto:help@example.com">help@example.com</a></p>'
        "<script>var hidden = 1;</script></body></html>"
    )

    text = html_to_text(html)

    assert text == (
        "May news\n\n"
        "Hi {{ first_name }}, here is what's new.\n\n"
        "- One\n- Two\n\n"
        "1. First\n2. Second\n\n"
        "Read our blog (https://example.com/blog) or https://example.com.\n\n"
        "Acme logo\n\n"
        "Unsubscribe ({{ unsubscribe_url }}) · help@example.com"
    )


def test_it_keeps_a_merge_tag_with_a_quoted_default_inside_a_link_whole():
    # given a link whose URL holds a merge tag with a double-quoted default, as the
    # editor keeps it (the sanitizer protects merge tags)
    html = (
        '<p><a href="https://example.com/?c={{ attributes.city|default:"none" }}">Go</a> '
        '{{ first_name|default:"friend" }}</p>'
    )

    # when the text part is made
    text = html_to_text(html)

    # then both merge tags are whole, so recipients never see half a tag
    assert text == (
        'Go (https://example.com/?c={{ attributes.city|default:"none" }}) '
        '{{ first_name|default:"friend" }}'
    )


def test_it_decodes_entities_and_keeps_at_most_one_blank_line():
    html = (
        "<p>Fish &amp; chips&nbsp;&mdash; &lt;tasty&gt;</p><div></div><div></div><br><br><br>"
        "<p></p><p>End</p>"
    )

    assert html_to_text(html) == "Fish & chips — <tasty>\n\nEnd"


def test_it_puts_table_rows_on_their_own_lines():
    html = "<table><tr><td>Price</td><td>10</td></tr><tr><td>Tax</td><td>2</td></tr></table>"

    assert html_to_text(html) == "Price 10\nTax 2"


def test_it_reads_broken_html():
    assert html_to_text("<p>Unclosed <b>bold <a href='https://x.example'>link") == (
        "Unclosed bold link"
    )


# -- extract_links --------------------------------------------------------------------------


def test_it_extracts_distinct_http_links_in_order():
    html = (
        '<a href="https://b.example/">b</a><a href="http://a.example/x?y=1&amp;z=2">a</a>'
        '<a href="https://b.example/">b again</a><a href="{{ unsubscribe_url }}">u</a>'
        '<a href="https://shop.example/?e={{ email }}">merge</a>'
        '<a href="mailto:x@example.com">m</a>'
        '<a href="#top">top</a><a>no href</a><img src="https://img.example/i.png">'
        '<a href=" HTTPS://c.example/ ">c</a>'
    )

    assert extract_links(html) == [
        "https://b.example/",
        "http://a.example/x?y=1&z=2",
        "HTTPS://c.example/",
    ]


def test_it_keeps_outlooks_ghost_tables_of_table_tags_alone():
    ghost = (
        '<!--[if mso | IE]><table border="0" cellpadding="0" role="presentation" '
        'style="width:600px;"><tr><td style="width:300px;"><![endif]-->'
    )
    closing = "<!--[if mso | IE]></td></tr></table><![endif]-->"
    html = f"<div>{ghost}<p>Left</p>{closing}</div>"

    kept = sanitize_html(html)

    assert ghost in kept
    assert closing in kept


@pytest.mark.parametrize(
    "inside",
    [
        "<script>alert(1)</script>",
        '<td style="background:url(https://tracker.example/p.gif)">',
        '<td style="width:expression(alert(1))">',
        "<img src=x onerror=alert(1)>",
        "<td>Visible only in Outlook</td>",
        '<td onclick="x()">',
        '<a href="javascript:x()">',
    ],
)
def test_it_drops_any_other_conditional_comment(inside):
    html = f"<p>x</p><!--[if mso | IE]>{inside}<![endif]--><p>y</p>"

    cleaned = sanitize_html(html)

    assert "[if mso" not in cleaned
    assert "alert" not in cleaned
    assert "tracker" not in cleaned
    assert "Visible only" not in cleaned
