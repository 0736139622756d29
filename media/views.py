"""The media library (upload, copy an image's address, delete) and the public image
addresses that emails point at."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.views.decorators.http import require_safe

from accounts.http import AccountRequest
from accounts.roles import Perm, role_can
from accounts.scoping import get_for_account_or_404
from accounts.views.decorators import account_required
from media import selectors, services
from media.forms import ImageUploadForm
from media.models import Image
from media.storage import image_storage
from media.uploads import refuse_oversized

PAGE_SIZE = 48
# A year, and never revalidated: the bytes behind an address never change.
CACHE_CONTROL = "public, max-age=31536000, immutable"
# An image opened on its own runs nothing and loads nothing, whatever it turns out to be.
IMAGE_POLICY = "default-src 'none'; sandbox"


def _refused(request: HttpRequest, message: str) -> HttpResponse:
    messages.error(request, message)
    return redirect("images")


@account_required(Perm.VIEW)
@refuse_oversized(_refused)
def images(request: AccountRequest) -> HttpResponse:
    form = ImageUploadForm()
    if request.method == "POST":
        if not role_can(request.membership.role, Perm.EDIT_CONTENT):
            messages.error(request, "Your role cannot upload images.")
            return redirect("images")
        form = ImageUploadForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                image = services.image_upload(
                    account=request.account, actor=request.user, file=form.cleaned_data["file"]
                )
            except services.ImageRefused as refused:
                for message in refused.messages:
                    form.add_error("file", message)
            else:
                messages.success(
                    request,
                    f"{image.name} uploaded ({image.width} {services.TIMES} {image.height} "
                    "pixels). Copy its address into your campaign.",
                )
                return redirect("images")
    page = Paginator(selectors.images(request.account), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "media/images.html",
        {
            "page": page,
            "form": form,
            "used": selectors.bytes_used(request.account),
            "quota": settings.MISSIVE_IMAGE_QUOTA_BYTES,
        },
    )


@account_required(Perm.EDIT_CONTENT)
def image_delete(request: AccountRequest, image_id: int) -> HttpResponse:
    image = get_for_account_or_404(Image, request.account, pk=image_id)
    if request.method == "POST":
        services.image_delete(image=image, actor=request.user)
        messages.success(request, f"{image.name} deleted.")
        return redirect("images")
    return render(
        request,
        "accounts/confirm.html",
        {
            "form": None,
            "title": f"Delete {image.name}?",
            "body": f"Its files ({filesizeformat(image.size)}) are deleted at once. Emails "
            "already sent with this image will show a broken image in its place, and "
            "campaigns that use its address will too.",
            "confirm_label": "Delete the image",
            "cancel_url": "images",
        },
    )


@require_safe
def image_public(request: HttpRequest, key: str, variant: str, ext: str) -> FileResponse:
    """An image as an email shows it. No login: the random key is the address."""
    image = selectors.public_image(key)
    if image is None or variant not in image.variants or ext != image.extension:
        raise Http404("No such image.")
    try:
        file = image_storage().open(image.storage_name(variant), "rb")
    except (FileNotFoundError, OSError):
        raise Http404("No such image.") from None
    response = FileResponse(file, content_type=image.content_type)
    response["Cache-Control"] = CACHE_CONTROL
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = IMAGE_POLICY
    # Webmail shows it from its own origin (or its image proxy's).
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    response["ETag"] = f'"{image.key}-{variant}"'
    return response
