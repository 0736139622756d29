"""Telling machines from people on the public endpoints and in provider events.

Apple Mail Privacy Protection prefetches every image when a message is delivered, whether
anyone reads it or not; some proxies and security gateways fetch images or follow every
link of a message on arrival. Their requests are recorded but flagged, and reports count
people by default. Gmail's image proxy (GoogleImageProxy) is not one of them: Gmail
fetches the images through it when its user opens the message, so its open is the
person's (counting it as a machine's hides most Gmail opens), unless timing says
otherwise. Three signals, each enough on its own:

- the user agent: prefetching proxies and scanners name themselves; Apple's MPP proxy
  sends a bare ``Mozilla/5.0``; a request with no user agent at all is no mail app;
- the network (opens only): Apple's own networks, where MPP fetches from
  (events/apple_networks.txt). Clicks are not judged by network: people browse through
  iCloud Private Relay too;
- timing: an open within seconds of sending, a click within ten seconds, or a click
  right after another click of the same message (a scanner follows every link at once).

Each judgement says why (``open_reason``, ``click_reason``: one of ``REASONS``), the
event keeps it in ``detail["machine_reason"]``, and the report shows the customer how
many opens and clicks were left out for each reason.

The functions are pure and cheap (no query): the pixel and the click endpoints call them
with what their one statement already read (the delivery's ``sent_at``, the message's
recent clicks). Called with the user agent alone, they judge by the user agent alone.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

# Security gateways that announce themselves in the user agent.
_SCANNERS = (
    r"Barracuda|Mimecast|Proofpoint|Symantec|Forcepoint|Trend ?Micro|SafeLinks|Sophos|"
    r"Cisco|IronPort|Fortinet|ZScaler"
)
_AUTOMATION = (
    r"bot\b|crawler|spider|curl/|wget/|python-requests|python-urllib|Go-http-client|"
    r"okhttp|Java/|libwww-perl|HeadlessChrome|PhantomJS"
)
# Why a request was judged a machine's: the reason codes kept on the event, and what the
# report calls them.
APPLE_MPP = "apple_mpp"
PREFETCH = "prefetch"
SCANNER = "scanner"
AUTOMATION = "automation"
NO_AGENT = "no_agent"
TIMING = "timing"
PROVIDER = "provider"
REASONS = {
    APPLE_MPP: "Apple Mail Privacy Protection",
    PREFETCH: "image prefetching proxies and previews",
    SCANNER: "security scanners and link checkers",
    AUTOMATION: "bots and automated clients",
    NO_AGENT: "requests without a user agent",
    TIMING: "timing (within seconds of sending, or every link at once)",
    PROVIDER: "flagged by the sending provider",
}

# Proxies that fetch images ahead of the reader: an open by one of them says nothing
# about the person. Not GoogleImageProxy (ggpht.com): Gmail fetches through it when its
# user opens the message. (Outlook for Windows loads images as "ms-office" when its
# user reads the message: a person, so it is not listed here.)
_PREFETCH_AGENTS = re.compile(
    r"YahooMailProxy|Yahoo! Slurp|OutlookImageProxy|Thunderbird.*Prefetch|preview",
    re.IGNORECASE,
)
# Gmail's image proxy, which fetches when its user opens the message.
_READER_PROXY_AGENTS = re.compile(r"GoogleImageProxy|ggpht\.com", re.IGNORECASE)
# Link scanners of mail security gateways and link previews. Office apps check a link
# with an "ms-office" request before handing it to the browser, which then makes the
# person's own request.
_CLICK_CHECKERS = re.compile(
    r"scanner|preview|ms-office|Microsoft Office Existence Discovery|"
    r"Microsoft Office Protocol Discovery",
    re.IGNORECASE,
)
_SCANNER_AGENTS = re.compile(_SCANNERS, re.IGNORECASE)
_AUTOMATION_AGENTS = re.compile(_AUTOMATION, re.IGNORECASE)
# Apple Mail Privacy Protection's proxy says nothing more than this.
_APPLE_PROXY_AGENT = "Mozilla/5.0"

# Nobody opens a message within seconds of it leaving, or reads and clicks within ten;
# gateways that scan on arrival do.
OPEN_MIN_DELAY = timedelta(seconds=3)
CLICK_MIN_DELAY = timedelta(seconds=10)
# A click this close to another click of the same message: a scanner walking the links.
CLICK_BURST_WINDOW = timedelta(seconds=1)

NETWORKS_FILE = Path(__file__).with_name("apple_networks.txt")


class Networks:
    """A set of IP networks, answering membership by binary search: fast enough for
    Apple's full egress list (hundreds of thousands of prefixes) if an operator drops it in."""

    def __init__(self, prefixes: Iterable[str]) -> None:
        ranges: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for prefix in prefixes:
            network = ipaddress.ip_network(prefix, strict=False)
            first = int(network.network_address)
            ranges[network.version].append((first, first + network.num_addresses - 1))
        self._starts: dict[int, list[int]] = {}
        self._ends: dict[int, list[int]] = {}
        for version, spans in ranges.items():
            merged: list[tuple[int, int]] = []
            for start, end in sorted(spans):
                if merged and start <= merged[-1][1] + 1:
                    merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
                else:
                    merged.append((start, end))
            self._starts[version] = [start for start, _ in merged]
            self._ends[version] = [end for _, end in merged]

    def __contains__(self, ip: object) -> bool:
        try:
            address = ipaddress.ip_address(str(ip).strip())
        except ValueError:
            return False
        if address.version == 6 and address.ipv4_mapped:
            address = address.ipv4_mapped
        value = int(address)
        starts = self._starts[address.version]
        index = bisect.bisect_right(starts, value) - 1
        return index >= 0 and value <= self._ends[address.version][index]


def read_networks(path: Path) -> Networks:
    prefixes = []
    for line in path.read_text().splitlines():
        prefix = line.split(",", 1)[0].strip()
        if prefix and not prefix.startswith("#"):
            prefixes.append(prefix)
    return Networks(prefixes)


@lru_cache(maxsize=1)
def apple_networks() -> Networks:
    return read_networks(NETWORKS_FILE)


def _agent_reason(user_agent: str | None, checkers: re.Pattern[str], reason: str) -> str | None:
    # None: the agent is not known (a provider that does not report it), which says
    # nothing; "": the request carried none, which no mail app or browser does.
    if user_agent is None:
        return None
    agent = user_agent.strip()
    if not agent:
        return NO_AGENT
    if agent == _APPLE_PROXY_AGENT:
        return APPLE_MPP
    if _SCANNER_AGENTS.search(agent):
        return SCANNER
    if checkers.search(agent):
        return reason
    if _AUTOMATION_AGENTS.search(agent):
        return AUTOMATION
    return None


def _too_soon(sent_at: datetime | None, now: datetime | None, delay: timedelta) -> bool:
    return sent_at is not None and now is not None and now - sent_at < delay


def open_reason(
    user_agent: str | None,
    ip: str | None = None,
    sent_at: datetime | None = None,
    now: datetime | None = None,
) -> str | None:
    """Why an open of the pixel was a prefetcher's or a scanner's (a key of ``REASONS``);
    None for a person's."""
    reason = _agent_reason(user_agent, _PREFETCH_AGENTS, PREFETCH)
    if reason is None and ip and ip in apple_networks():
        reason = APPLE_MPP
    if reason is None and _too_soon(sent_at, now, OPEN_MIN_DELAY):
        reason = TIMING
    return reason


def click_reason(
    user_agent: str | None,
    ip: str | None = None,
    sent_at: datetime | None = None,
    now: datetime | None = None,
    recent_clicks: Sequence[datetime] = (),
) -> str | None:
    """Why a click was a link scanner's (a key of ``REASONS``); None for a person's.
    ``recent_clicks``: when the same message's earlier clicks happened (those of the last
    seconds are enough)."""
    reason = _agent_reason(user_agent, _CLICK_CHECKERS, SCANNER)
    if reason is None and (
        _too_soon(sent_at, now, CLICK_MIN_DELAY)
        or (
            now is not None
            and any(abs(now - earlier) <= CLICK_BURST_WINDOW for earlier in recent_clicks)
        )
    ):
        reason = TIMING
    return reason


def is_machine_open(
    user_agent: str | None,
    ip: str | None = None,
    sent_at: datetime | None = None,
    now: datetime | None = None,
) -> bool:
    """Whether an open of the pixel was made by a prefetcher or a scanner."""
    return open_reason(user_agent, ip, sent_at, now) is not None


def is_machine_click(
    user_agent: str | None,
    ip: str | None = None,
    sent_at: datetime | None = None,
    now: datetime | None = None,
    recent_clicks: Sequence[datetime] = (),
) -> bool:
    """Whether a click was made by a link scanner."""
    return click_reason(user_agent, ip, sent_at, now, recent_clicks) is not None


def opened_by_reader(user_agent: str | None) -> bool:
    """Whether the agent is a proxy that fetches when its user opens the message (Gmail's):
    a provider that flags every proxy open is not followed for it."""
    return bool(user_agent and _READER_PROXY_AGENTS.search(user_agent))


def reason_detail(reason: str | None) -> dict[str, str]:
    """What an event's ``detail`` keeps of the judgement."""
    return {"machine_reason": reason} if reason else {}
