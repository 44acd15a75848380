"""Links to this app's pages from anywhere: a request, a job, a CLI command."""

from __future__ import annotations

from typing import Any

from flask import current_app, has_request_context, url_for


def app_url(endpoint: str, *, external: bool = True, **values: Any) -> str:
    """``url_for`` in a request or when the app knows its address (``SERVER_NAME``; absolute
    when ``external``, as an e-mail needs), else the page's path under ``APPLICATION_ROOT``:
    a job or CLI command without ``SERVER_NAME`` still gets a working link, not an error."""
    if has_request_context() or current_app.config.get("SERVER_NAME"):
        return url_for(endpoint, _external=external, **values)
    root = current_app.config.get("APPLICATION_ROOT") or "/"
    return current_app.url_map.bind("localhost", script_name=root).build(endpoint, values)
