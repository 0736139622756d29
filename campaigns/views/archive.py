"""The public archive: an account's chosen campaigns as pages and an Atom feed, for anyone.

No login, no cookie needed, nothing of any recipient, nothing tracked (campaigns.archive).
A key that is forged or whose account is closed, and a campaign that is not (or no
longer) in the archive, answer 404.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed
from django.views.decorators.clickjacking import xframe_options_sameorigin

from accounts.models import Account
from campaigns import archive
from campaigns.models import Campaign
from campaigns.views.framed import framed
from contacts.subscribing import form_key

# Cached by browsers and proxies for a few minutes: a campaign taken out of the archive
# is gone from it soon after.
CACHE = "public, max-age=300"


def _account(key: str) -> Account:
    account = archive.account_for_key(key)
    if account is None:
        raise Http404("No such archive.")
    return account


def _campaign(account: Account, campaign_id: int) -> Campaign:
    campaign = archive.archived(account).filter(pk=campaign_id).first()
    if campaign is None:
        raise Http404("No such campaign in this archive.")
    return campaign


def _subscribe_links(campaigns: list[Campaign]) -> list[tuple[str, str]]:
    return [
        (contact_list.name, reverse("subscribe", args=[form_key(contact_list)]))
        for contact_list in archive.subscribe_lists(campaigns)
    ]


def _cached(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = CACHE
    return response


def archive_index(request: HttpRequest, key: str) -> HttpResponse:
    account = _account(key)
    campaigns = list(archive.archived(account).prefetch_related("lists")[:200])
    issues = [(campaign, archive.render(campaign)[0]) for campaign in campaigns]
    return _cached(
        render(
            request,
            "campaigns/public/archive.html",
            {
                "account": account,
                "key": key,
                "issues": issues,
                "subscribe": _subscribe_links(campaigns),
            },
        )
    )


def archive_campaign(request: HttpRequest, key: str, campaign_id: int) -> HttpResponse:
    account = _account(key)
    campaign = _campaign(account, campaign_id)
    subject, _html = archive.render(campaign)
    return _cached(
        render(
            request,
            "campaigns/public/archive_campaign.html",
            {
                "account": account,
                "key": key,
                "campaign": campaign,
                "subject": subject,
                "subscribe": _subscribe_links([campaign]),
            },
        )
    )


@xframe_options_sameorigin
def archive_content(request: HttpRequest, key: str, campaign_id: int) -> HttpResponse:
    """The campaign's HTML as a document of its own, for the archive page's frame."""
    campaign = _campaign(_account(key), campaign_id)
    return _cached(framed(archive.render(campaign)[1], links_open=True))


def archive_feed(request: HttpRequest, key: str) -> HttpResponse:
    account = _account(key)
    index = request.build_absolute_uri(reverse("archive_index", args=[key]))
    feed = Atom1Feed(
        title=f"{account.name}: past campaigns",
        link=index,
        description=f"The campaigns {account.name} sent and chose to publish.",
        language="en",
        feed_url=request.build_absolute_uri(),
    )
    for campaign in archive.archived(account)[:50]:
        subject, html = archive.render(campaign)
        link = request.build_absolute_uri(reverse("archive_campaign", args=[key, campaign.pk]))
        feed.add_item(
            title=subject or campaign.name,
            link=link,
            description=html,
            unique_id=link,
            pubdate=campaign.started_at,
            updateddate=campaign.finished_at or campaign.started_at,
        )
    response = HttpResponse(content_type="application/atom+xml; charset=utf-8")
    feed.write(response, "utf-8")
    return _cached(response)
