"""The block editor: the blocks of a campaign's body in order, one block's settings in the
side panel, and the message as a recipient would see it beside them.

Every change is a POST of a small form (add, move, duplicate, remove, save a block or
the design). With htmx the editor swaps itself in place; without it the page reloads.
Each change goes through ``services.campaign_update``, which checks the blocks and makes
the HTML from them, so the preview always shows what would be sent.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from accounts.http import AccountRequest
from accounts.models import Account
from accounts.query import QueryParams, parse_id
from accounts.roles import Perm, role_can
from accounts.scoping import get_for_account_or_404
from accounts.views.decorators import account_required
from campaigns import ab, blocks, services
from campaigns.composing import compose
from campaigns.models import Campaign, Editor, Template
from campaigns.rendering import TemplateRefused
from campaigns.sanitizing import sanitize_html
from campaigns.selectors import recipient_values
from campaigns.starters import BY_KEY
from campaigns.states import Action, allowed_actions
from campaigns.views.framed import framed
from media import selectors as media_selectors
from media import services as media_services
from media.models import Image
from media.uploads import refuse_oversized

# The fields of each block type the side panel shows, in order, with their input kind.
FIELDS: dict[str, list[tuple[str, str, str]]] = {
    "heading": [
        ("text", "Text", "line"),
        ("level", "Size", "level"),
        ("align", "Alignment", "align"),
        ("color", "Colour (blank: the text colour)", "colour?"),
        ("padding", "Space above and below (px)", "number"),
    ],
    "text": [
        ("html", "Text", "rich"),
        ("align", "Alignment", "align"),
        ("color", "Colour (blank: the text colour)", "colour?"),
        ("padding", "Space above and below (px)", "number"),
    ],
    "image": [
        ("src", "Image address (https://…)", "url"),
        ("alt", "Alternative text (what the image shows, for those who cannot see it)", "line"),
        ("href", "Link (optional)", "url"),
        ("width", "Width in px (0: the full width)", "number"),
        ("align", "Alignment", "align"),
        ("padding", "Space above and below (px)", "number"),
    ],
    "button": [
        ("label", "Label", "line"),
        ("href", "Link", "url"),
        ("background", "Button colour", "colour"),
        ("color", "Label colour", "colour"),
        ("radius", "Rounded corners (px)", "number"),
        ("align", "Alignment", "align"),
        ("padding", "Space above and below (px)", "number"),
    ],
    "divider": [
        ("color", "Colour", "colour"),
        ("thickness", "Thickness (px)", "number"),
        ("padding", "Space above and below (px)", "number"),
    ],
    "spacer": [("height", "Height (px)", "number")],
    "columns": [
        ("count", "Columns", "count"),
        ("background", "Background (blank: the message's)", "colour?"),
        ("padding", "Space above and below (px)", "number"),
    ],
    "social": [("links", "Links", "social"), ("align", "Alignment", "align")],
    "quote": [
        ("text", "Quote", "area"),
        ("cite", "Who said it", "line"),
        ("border", "Bar colour", "colour"),
        ("color", "Text colour (blank: the text colour)", "colour?"),
        ("padding", "Space above and below (px)", "number"),
    ],
    "footer": [("text", "Text", "area"), ("padding", "Space above and below (px)", "number")],
}
SETTINGS_FIELDS = [
    ("background", "Background", "colour"),
    ("content_background", "Message background", "colour"),
    ("text_color", "Text colour", "colour"),
    ("link_color", "Link colour", "colour"),
    ("font", "Font", "font"),
]
NUMERIC = {"level", "padding", "width", "radius", "thickness", "height", "count"}


def _values(kind: str, data: QueryDict) -> dict[str, Any]:
    """A block's fields as the panel posted them: text as typed, numbers as numbers when
    they read as such (``blocks.clean_document`` says what is wrong otherwise)."""
    values: dict[str, Any] = {}
    for name, _label, _input in FIELDS[kind]:
        if name == "links":
            values["links"] = [
                {"network": network, "href": data.get(f"f-social-{network}", "").strip()}
                for network in blocks.NETWORKS
                if data.get(f"f-social-{network}", "").strip()
            ]
            continue
        value = data.get(f"f-{name}", "")
        if name in NUMERIC:
            try:
                values[name] = int(value)
            except ValueError:
                values[name] = value
        else:
            values[name] = value.strip() if name not in ("html", "text") else value
    if kind == "columns" and not isinstance(values.get("count"), int):
        values["count"] = 2
    return values


def email_url(image: Image) -> str:
    """The address of an image for a message 600 px wide: the 1200 px copy when there is
    one (sharp on a high-density screen), else the original."""
    return image.url("1200") if "1200" in image.variants else image.url()


def _library_choice(account: Account, data: QueryDict) -> str | None:
    """The address of the library image chosen in the panel, if one was."""
    image_id = QueryParams(data).id("f-image")
    if image_id is None:
        return None
    image = Image.objects.for_account(account).filter(pk=image_id).first()
    return email_url(image) if image is not None else None


def _variant(request: AccountRequest, campaign: Campaign) -> int:
    """The A/B variant whose blocks are edited (1 for B…), or 0 for the campaign's own.
    Raises Http404 for a variant the campaign does not have."""
    given = request.POST.get("variant") if request.method == "POST" else None
    number = parse_id(given or request.GET.get("variant", ""))
    if number is None:
        return 0
    try:
        ab.variant_document(campaign, number)
    except LookupError:
        raise Http404("No such variant.") from None
    return number


def _document(campaign: Campaign, variant: int = 0) -> dict[str, Any]:
    if variant:
        return ab.variant_document(campaign, variant)
    return campaign.blocks or blocks.empty_document()


def _save(
    request: AccountRequest, campaign: Campaign, variant: int, document: dict[str, Any]
) -> None:
    """Store the blocks: the campaign's own, or a variant's. Raises ValidationError."""
    if variant:
        ab.variant_blocks_set(
            campaign=campaign, actor=request.user, variant=variant, document=document
        )
    else:
        services.campaign_update(
            campaign=campaign, actor=request.user, editor=Editor.BLOCKS, blocks=document
        )


def _context(
    request: AccountRequest,
    campaign: Campaign,
    document: dict[str, Any],
    *,
    selected: str = "",
    errors: dict[str, list[str]] | None = None,
    variant: int = 0,
) -> dict[str, Any]:
    can_edit = role_can(
        request.membership.role, Perm.EDIT_CONTENT
    ) and Action.EDIT in allowed_actions(campaign.status, campaign.kind)
    block = blocks.find(document, selected) if selected else None
    fields = []
    if block is not None:
        for name, label, kind in FIELDS[block["type"]]:
            value = len(block["columns"]) if name == "count" else block.get(name, "")
            fields.append({"name": name, "label": label, "kind": kind, "value": value})
    social = {}
    if block is not None and block["type"] == "social":
        given = {link["network"]: link["href"] for link in block.get("links", [])}
        social = {
            network: (label, given.get(network, "")) for network, label in blocks.NETWORKS.items()
        }
    library = []
    if block is not None and block["type"] == "image":
        library = [
            {
                "id": image.pk,
                "label": f"{image.name} ({image.width} x {image.height} px)",
                "url": email_url(image),
            }
            for image in media_selectors.images(campaign.account)[:100]
        ]
    width = "mobile" if request.GET.get("width") == "mobile" else "desktop"
    return {
        "campaign": campaign,
        "document": document,
        "settings": document.get("settings", blocks.DEFAULT_SETTINGS),
        "settings_fields": [
            {"name": n, "label": label, "kind": k, "value": document.get("settings", {}).get(n, "")}
            for n, label, k in SETTINGS_FIELDS
        ],
        "rows": _rows(document),
        "chosen": block,  # (not "block": Django's {% block %} tags set that name)
        "block_label": blocks.LABELS.get(block["type"], "") if block else "",
        "fields": fields,
        "social": social,
        "library": library,
        "fonts": [(key, label) for key, (label, _) in blocks.FONTS.items()],
        "kinds": list(blocks.LABELS.items()),
        "column_kinds": [(k, blocks.LABELS[k]) for k in blocks.IN_COLUMNS],
        "errors": errors or {},
        "can_edit": can_edit,
        "width": width,
        "confirm_remove": request.GET.get("confirm") == "remove",
        "preview_version": int(campaign.updated_at.timestamp() * 1000),
        # Editing an A/B variant's blocks: every link and form of the editor says which.
        "variant": variant,
        "variant_letter": ab.letter(variant) if variant else "",
        "vq": f"variant={variant}&" if variant else "",
    }


def _rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The blocks in reading order, a columns block followed by each column's blocks."""
    rows = []
    for block in document.get("blocks", []):
        rows.append({"block": block, "summary": blocks.summary(block), "depth": 0})
        if block["type"] == "columns":
            for n, column in enumerate(block["columns"]):
                rows.append({"column": (block["id"], n), "label": f"Column {n + 1}", "depth": 1})
                rows.extend({"block": b, "summary": blocks.summary(b), "depth": 2} for b in column)
    for row in rows:
        if "block" in row:
            row["label"] = blocks.LABELS[row["block"]["type"]]
    return rows


def _render(request: AccountRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    template = "campaigns/_blocks_editor.html" if request.htmx else "campaigns/campaign_blocks.html"
    return render(request, template, context, status=status)


@account_required(Perm.VIEW)
def campaign_blocks(request: AccountRequest, campaign_id: int) -> HttpResponse:
    campaign = get_for_account_or_404(Campaign, request.account, pk=campaign_id)
    if campaign.editor != Editor.BLOCKS:
        messages.info(request, "This campaign is written in HTML code.")
        return redirect("campaign_detail", campaign_id=campaign.pk)
    selected = request.GET.get("block", "")[:20]
    variant = _variant(request, campaign)
    document = _document(campaign, variant)
    return _render(
        request, _context(request, campaign, document, selected=selected, variant=variant)
    )


@require_POST
@account_required(Perm.EDIT_CONTENT)
def campaign_blocks_change(request: AccountRequest, campaign_id: int) -> HttpResponse:
    """One change to the blocks, saved at once."""
    campaign = get_for_account_or_404(Campaign, request.account, pk=campaign_id)
    if campaign.editor != Editor.BLOCKS:
        return redirect("campaign_detail", campaign_id=campaign.pk)
    variant = _variant(request, campaign)
    document = _document(campaign, variant)
    action = request.POST.get("action", "")
    block_id = request.POST.get("block", "")[:20]
    selected = block_id
    try:
        if action == "add":
            column = None
            if request.POST.get("column"):
                parent, _, number = request.POST["column"].partition(":")
                column = (parent, int(number))
            document, block = blocks.add(
                document,
                request.POST.get("kind", ""),
                after=request.POST.get("after", "")[:20],
                column=column,
            )
            selected = block["id"]
        elif action in ("up", "down"):
            document = blocks.move(document, block_id, -1 if action == "up" else 1)
        elif action == "duplicate":
            document, block = blocks.duplicate(document, block_id)
            selected = block["id"]
        elif action == "remove":
            document = blocks.remove(document, block_id)
            selected = ""
        elif action == "save":
            found = blocks.find(document, block_id)
            if found is None:
                raise KeyError(block_id)
            values = _values(found["type"], request.POST)
            if found["type"] == "image":
                values["src"] = _library_choice(request.account, request.POST) or values["src"]
            document = blocks.change(document, block_id, values)
        elif action == "settings":
            given = {name: request.POST.get(f"s-{name}", "") for name, _, _ in SETTINGS_FIELDS}
            document = {**document, "settings": given}
        else:
            raise KeyError(action)
    except (KeyError, IndexError, ValueError, blocks.BlocksInvalid):
        # A block removed in another tab, or a form from an older page.
        messages.error(request, "That block is no longer there. The editor shows it as saved.")
        return _after(request, campaign, "", variant)
    try:
        _save(request, campaign, variant, document)
    except ValidationError as error:
        problems = error.message_dict if hasattr(error, "error_dict") else {"": error.messages}
        context = _context(
            request, campaign, document, selected=selected, errors=problems, variant=variant
        )
        return _render(request, context, status=400)
    return _after(request, campaign, selected, variant)


def _after(
    request: AccountRequest, campaign: Campaign, selected: str, variant: int = 0
) -> HttpResponse:
    if request.htmx:
        campaign.refresh_from_db()
        document = _document(campaign, variant)
        return _render(
            request, _context(request, campaign, document, selected=selected, variant=variant)
        )
    url = reverse("campaign_blocks", args=[campaign.pk])
    query = QueryDict(mutable=True)
    if variant:
        query["variant"] = str(variant)
    if selected:
        query["block"] = selected
    if request.POST.get("width") == "mobile":
        query["width"] = "mobile"
    return redirect(f"{url}?{query.urlencode()}" if query else url)


@account_required(Perm.EDIT_CONTENT)
def campaign_editor(request: AccountRequest, campaign_id: int) -> HttpResponse:
    """Switch between the block editor and HTML code. To HTML, the code made from the
    blocks is kept to go on from; to blocks, the body starts again from the blocks the
    campaign had, or from none, after a confirmation when HTML would be lost."""
    campaign = get_for_account_or_404(Campaign, request.account, pk=campaign_id)
    if request.method != "POST":
        return render(
            request,
            "accounts/confirm.html",
            {
                "form": None,
                "title": "Replace the HTML with blocks?",
                "body": "The message starts again from an empty set of blocks, and its HTML "
                "code is replaced. To keep the HTML, save the campaign as a template first, "
                "or duplicate it.",
                "confirm_label": "Switch to blocks",
                "cancel_href": reverse("campaign_detail", args=[campaign.pk]),
                "hidden": {"editor": Editor.BLOCKS},
            },
        )
    editor = request.POST.get("editor")
    if editor not in Editor.values:
        return redirect("campaign_detail", campaign_id=campaign.pk)
    try:
        services.campaign_update(campaign=campaign, actor=request.user, editor=editor)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("campaign_detail", campaign_id=campaign.pk)
    if editor == Editor.BLOCKS:
        messages.success(request, "This campaign is now made of blocks.")
        return redirect("campaign_blocks", campaign_id=campaign.pk)
    messages.success(request, "This campaign is now written in HTML code, from its blocks.")
    return redirect("campaign_detail", campaign_id=campaign.pk)


def _sample(request: AccountRequest, **content: Any) -> str:
    """The content as the preview shows it: sample values, the footer, no tracking."""
    campaign = Campaign(account=request.account, **content)
    try:
        return compose(campaign).render(recipient_values(campaign, None))[1]
    except TemplateRefused as refused:
        return format_html("<p>This message cannot be shown: {}</p>", str(refused))


@xframe_options_sameorigin
@account_required(Perm.VIEW)
def starter_preview(request: AccountRequest, key: str) -> HttpResponse:
    starter = BY_KEY.get(key)
    if starter is None:
        raise Http404("No such starter.")
    html = starter.html
    if starter.blocks is not None:
        html = blocks.to_html(blocks.clean_document(starter.blocks))
    return framed(_sample(request, html=sanitize_html(html), subject=starter.subject))


@xframe_options_sameorigin
@account_required(Perm.VIEW)
def template_preview(request: AccountRequest, template_id: int) -> HttpResponse:
    template = get_for_account_or_404(Template, request.account, pk=template_id)
    return framed(
        _sample(request, html=template.html, subject=template.subject, preheader=template.preheader)
    )


def _upload_refused(request: HttpRequest, message: str, campaign_id: int) -> HttpResponse:
    """Back to the image block (named in the form's address: its body is not read)."""
    messages.error(request, message)
    url = reverse("campaign_blocks", args=[campaign_id])
    query = QueryDict(mutable=True)
    for name in ("variant", "block", "width"):
        if request.GET.get(name):
            query[name] = request.GET[name][:20]
    return redirect(f"{url}?{query.urlencode()}" if query else url)


@require_POST
@account_required(Perm.EDIT_CONTENT)
@refuse_oversized(_upload_refused)
def campaign_blocks_upload(request: AccountRequest, campaign_id: int) -> HttpResponse:
    """An image uploaded from the image block's panel: kept in the library, and put in the
    block at once."""
    campaign = get_for_account_or_404(Campaign, request.account, pk=campaign_id)
    block_id = request.POST.get("block", "")[:20]
    variant = _variant(request, campaign)
    document = _document(campaign, variant)
    found = blocks.find(document, block_id)
    upload = request.FILES.get("file")
    if campaign.editor != Editor.BLOCKS or found is None or found["type"] != "image":
        messages.error(request, "That image block is no longer there.")
        return _after(request, campaign, "", variant)
    if upload is None:
        messages.error(request, "Choose an image file to upload.")
        return _after(request, campaign, block_id, variant)
    try:
        image = media_services.image_upload(
            account=request.account, actor=request.user, file=upload
        )
    except ValidationError as refused:
        messages.error(request, " ".join(refused.messages))
        return _after(request, campaign, block_id, variant)
    document = blocks.change(document, block_id, {**found, "src": email_url(image)})
    try:
        _save(request, campaign, variant, document)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"“{image.name}” uploaded and put in the block.")
    return _after(request, campaign, block_id, variant)
