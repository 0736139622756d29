"""Container health check for the Missive web service.

Requests http://127.0.0.1:8000/healthz and exits 0 on a 2xx answer, 1 otherwise.
The request carries a Host header taken from ALLOWED_HOSTS and X-Forwarded-Proto: https,
so it passes host validation and the HTTPS redirect as a proxied request would.
"""

import os
import sys
import urllib.request

URL = "http://127.0.0.1:8000/healthz"


def host_header() -> str:
    for entry in os.environ.get("ALLOWED_HOSTS", "").split(","):
        entry = entry.strip().lstrip(".")
        if entry and "*" not in entry:
            return entry
    return "localhost"


def main() -> int:
    request = urllib.request.Request(
        URL, headers={"Host": host_header(), "X-Forwarded-Proto": "https"}
    )
    try:
        with urllib.request.urlopen(request, timeout=4) as response:  # noqa: S310
            return 0 if 200 <= response.status < 300 else 1
    except Exception as exc:  # any failure means unhealthy
        print(f"healthcheck failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
