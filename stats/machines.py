"""Telling machines from people on the public endpoints.

Mail providers fetch images through proxies (Gmail, Yahoo, Outlook) and prefetch them for
privacy (Apple Mail Privacy Protection); security gateways follow every link of a message.
Their requests are recorded but flagged, and reports count people by default. This first
version reads the user agent; the statistics work adds networks and timing.
"""

from __future__ import annotations

import re

# Image proxies and prefetchers: an open by one of them says nothing about the person.
_OPEN_AGENTS = re.compile(
    r"GoogleImageProxy|ggpht\.com|YahooMailProxy|Yahoo! Slurp|OutlookImageProxy|"
    r"Microsoft Office|ms-office|MSOffice|Thunderbird.*Prefetch|"
    r"bot\b|crawler|spider|preview|curl/|wget/|python-requests|python-urllib|Go-http-client|"
    r"okhttp|Java/|libwww-perl|HeadlessChrome",
    re.IGNORECASE,
)
# Link scanners of mail security gateways, and automated clients.
_CLICK_AGENTS = re.compile(
    r"bot\b|crawler|spider|scanner|preview|Barracuda|Mimecast|Proofpoint|Symantec|"
    r"Forcepoint|Trend ?Micro|SafeLinks|Sophos|Cisco|IronPort|Fortinet|ZScaler|"
    r"curl/|wget/|python-requests|python-urllib|Go-http-client|okhttp|Java/|libwww-perl|"
    r"HeadlessChrome|PhantomJS",
    re.IGNORECASE,
)


def is_machine_open(user_agent: str) -> bool:
    # A pixel fetched with no user agent at all is not a mail app showing a message.
    return not user_agent.strip() or bool(_OPEN_AGENTS.search(user_agent))


def is_machine_click(user_agent: str) -> bool:
    return not user_agent.strip() or bool(_CLICK_AGENTS.search(user_agent))
