"""Telling machines from people on the public endpoints and in provider events.

Mail providers fetch images through proxies (Gmail, Yahoo, Outlook) and prefetch them for
privacy (Apple Mail Privacy Protection); security gateways follow every link of a message.
Their requests are recorded but flagged, and reports count people by default. Three
signals, each enough on its own:

- the user agent: proxies and scanners name themselves; Apple's MPP proxy sends a bare
  ``Mozilla/5.0``; a request with no user agent at all is no mail app;
- the network (opens only): Apple's own networks, where MPP fetches from
  (stats/apple_networks.txt). Clicks are not judged by network: people browse through
  iCloud Private Relay too;
- timing: an open within seconds of sending, a click within ten seconds, or a click
  right after another click of the same message (a scanner follows every link at once).

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

# Proxies and scanners that announce themselves in the user agent.
_SCANNERS = (
    r"Barracuda|Mimecast|Proofpoint|Symantec|Forcepoint|Trend ?Micro|SafeLinks|Sophos|"
    r"Cisco|IronPort|Fortinet|ZScaler|"
)
_AUTOMATION = (
    r"bot\b|crawler|spider|curl/|wget/|python-requests|python-urllib|Go-http-client|"
    r"okhttp|Java/|libwww-perl|HeadlessChrome|PhantomJS"
)
# Image proxies and prefetchers: an open by one of them says nothing about the person.
# (Outlook for Windows loads images as "ms-office" when its user reads the message: a
# person, so it is not listed here.)
_OPEN_AGENTS = re.compile(
    r"GoogleImageProxy|ggpht\.com|YahooMailProxy|Yahoo! Slurp|OutlookImageProxy|"
    r"Thunderbird.*Prefetch|preview|" + _SCANNERS + _AUTOMATION,
    re.IGNORECASE,
)
# Link scanners of mail security gateways, link previews, and automated clients. Office
# apps check a link with an "ms-office" request before handing it to the browser, which
# then makes the person's own request.
_CLICK_AGENTS = re.compile(
    r"scanner|preview|ms-office|Microsoft Office Existence Discovery|"
    r"Microsoft Office Protocol Discovery|" + _SCANNERS + _AUTOMATION,
    re.IGNORECASE,
)
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


def _agent_says_machine(user_agent: str | None, pattern: re.Pattern[str]) -> bool:
    # None: the agent is not known (a provider that does not report it), which says
    # nothing; "": the request carried none, which no mail app or browser does.
    if user_agent is None:
        return False
    agent = user_agent.strip()
    return not agent or agent == _APPLE_PROXY_AGENT or bool(pattern.search(agent))


def _too_soon(sent_at: datetime | None, now: datetime | None, delay: timedelta) -> bool:
    return sent_at is not None and now is not None and now - sent_at < delay


def is_machine_open(
    user_agent: str | None,
    ip: str | None = None,
    sent_at: datetime | None = None,
    now: datetime | None = None,
) -> bool:
    """Whether an open of the pixel was made by a proxy, a prefetcher or a scanner."""
    return (
        _agent_says_machine(user_agent, _OPEN_AGENTS)
        or (bool(ip) and ip in apple_networks())
        or _too_soon(sent_at, now, OPEN_MIN_DELAY)
    )


def is_machine_click(
    user_agent: str | None,
    ip: str | None = None,
    sent_at: datetime | None = None,
    now: datetime | None = None,
    recent_clicks: Sequence[datetime] = (),
) -> bool:
    """Whether a click was made by a link scanner. ``recent_clicks``: when the same
    message's earlier clicks happened (those of the last seconds are enough)."""
    if _agent_says_machine(user_agent, _CLICK_AGENTS):
        return True
    if _too_soon(sent_at, now, CLICK_MIN_DELAY):
        return True
    return now is not None and any(
        abs(now - earlier) <= CLICK_BURST_WINDOW for earlier in recent_clicks
    )
