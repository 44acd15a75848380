"""Where Sandbox Pay sits in an app, and the URL rules its service and its pages share.

``service.py`` mounts the pages (``views.py``); both read the app's Sandbox Pay under
``EXTENSION_KEY`` and keep return URLs on this host, so those live here, below both.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["EXTENSION_KEY", "is_safe_return_url", "with_query"]

EXTENSION_KEY = "sandbox_pay"


def is_safe_return_url(url: str, host: str | None) -> bool:
    """A path on this site, or an http(s) URL on ``host`` (any host when unknown).

    This keeps the card form from being an open redirect.
    """
    if not url or any(char in url for char in "\\\r\n\t") or url.startswith("//"):
        return False
    parts = urlsplit(url)
    if not parts.scheme and not parts.netloc:
        return url.startswith("/")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    return host is None or parts.netloc.lower() == host.lower()


def with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))
