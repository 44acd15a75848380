"""What ``init_app`` checks about the host beyond our own settings (R-OPS-5).

A misconfigured host must be told at start, never at the first payment or the first
billing page: the base template our layout extends must exist and have the blocks we fill,
and billing e-mail must have somewhere to go (or be kept in the outbox on purpose).
"""

from __future__ import annotations

from flask import Flask
from jinja2 import TemplateNotFound, nodes

from .config import ConfigurationError
from .messages import setup_sentence

#: The blocks ``subscriptions/_layout.html`` fills in the host's base template.
LAYOUT_BLOCKS = ("title", "content")

#: Settings that say where mail goes: any of them set by the host means "configured".
MAIL_SERVER_KEYS = ("MAIL_SERVER", "MAIL_BACKEND")


def check_base_template(app: Flask, name: str) -> None:
    """The template exists and, itself or through what it extends, defines every block our
    layout fills: else each billing page would be a 500 at its first visit."""
    blocks = _blocks(app, name, seen=set())
    if blocks is None:
        raise ConfigurationError(setup_sentence("base_template_missing", name=name))
    missing = [block for block in LAYOUT_BLOCKS if block not in blocks]
    if missing:
        shown = ", ".join(f"`{block}`" for block in missing)
        raise ConfigurationError(setup_sentence("base_template_blocks", name=name, missing=shown))


def _blocks(app: Flask, name: str, seen: set[str]) -> set[str] | None:
    """Every block name of ``name`` and of the templates it extends (by a constant name);
    None when ``name`` does not exist. A dynamic ``extends`` is trusted, not followed."""
    if name in seen:
        return set()
    seen.add(name)
    env = app.jinja_env
    try:
        source, filename, _ = env.loader.get_source(env, name)  # type: ignore[union-attr]
    except TemplateNotFound:
        return None
    tree = env.parse(source, name, filename)
    found = {block.name for block in tree.find_all(nodes.Block)}
    for extends in tree.find_all(nodes.Extends):
        if not isinstance(extends.template, nodes.Const):
            return found | set(LAYOUT_BLOCKS)
        parent = _blocks(app, str(extends.template.value), seen)
        found |= parent or set()
    return found


def mail_configured(app: Flask) -> bool:
    """Whether billing e-mail has somewhere to go, or is kept in the outbox on purpose
    (``MAIL_SUPPRESS_SEND``, or ``TESTING``, which Flask-Mail treats the same way)."""
    config = app.config
    if config.get("MAIL_SUPPRESS_SEND", app.testing):
        return True
    return any(config.get(key) for key in MAIL_SERVER_KEYS)


def check_mail(app: Flask, required: bool) -> None:
    """Without a mail server every e-mail sits in the outbox with "Connection refused":
    an error with ``SUBSCRIPTIONS_REQUIRE_MAIL``, else a warning in the log at start."""
    if mail_configured(app):
        return
    if required:
        raise ConfigurationError(setup_sentence("mail_not_configured"))
    app.logger.warning(setup_sentence("mail_not_configured"))
