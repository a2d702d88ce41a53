"""The image's HEALTHCHECK: GET /api/v1/health on this container's HTTP port.

The port is POSTROOM_HTTP_PORT (8000 when unset); the address is POSTROOM_HTTP_HOST unless that
is a wildcard, then the loopback. Exit 0 on 200 (the service answers and reaches its database),
1 otherwise with the reason on stderr (`docker inspect` shows it).
"""

import os
import sys
import urllib.request

WILDCARDS = ("", "0.0.0.0", "::")


def main() -> int:
    port = os.environ.get("POSTROOM_HTTP_PORT") or "8000"
    host = os.environ.get("POSTROOM_HTTP_HOST", "")
    host = "127.0.0.1" if host in WILDCARDS else host
    if ":" in host:
        host = f"[{host}]"
    url = f"http://{host}:{port}/api/v1/health"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            status = response.status
    except Exception as error:  # refused, timed out, 503 (HTTPError): unhealthy either way
        print(f"unhealthy: {url}: {error}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: {url}: HTTP {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
