"""A real SMTP server on loopback (aiosmtpd) that records every message it accepts.

Tests read what was actually delivered over the wire: the envelope (MAIL FROM, RCPT TO),
the parsed headers and the text and HTML parts. The server can be stopped and started
again on the same port to play an outage, and told to refuse some recipients with a 550.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from .servers import HOST, free_port


@dataclass(frozen=True)
class Received:
    """One message the server accepted (after DATA)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    message: EmailMessage

    def header(self, name: str) -> list[str]:
        return [str(value) for value in self.message.get_all(name, [])]

    @property
    def header_names(self) -> set[str]:
        return {name.lower() for name in self.message}

    @property
    def raw_headers(self) -> str:
        """The header block exactly as it came over the wire (before the first blank line)."""
        text = self.raw.decode("utf-8", "replace").replace("\r\n", "\n")
        return text.partition("\n\n")[0]

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def _part(self, subtype: str) -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        assert part is not None, f"no text/{subtype} part in {self.subject!r}"
        assert part.get_content_type() == f"text/{subtype}"
        content: str = part.get_content()
        return content

    @property
    def text(self) -> str:
        return self._part("plain")

    @property
    def html(self) -> str:
        return self._part("html")


@dataclass
class RecordingHandler:
    """aiosmtpd handler: accepts everything except the addresses in ``refuse``."""

    received: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower() in self.refuse:
            with self._lock:
                self.refused.append(address)
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = bytes(envelope.original_content or envelope.content)
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self.received.append(
                Received(
                    mail_from=str(envelope.mail_from),
                    rcpt_tos=tuple(envelope.rcpt_tos),
                    raw=raw,
                    message=parsed,
                )
            )
        return "250 Message accepted for delivery"

    def messages(self) -> list[Received]:
        with self._lock:
            return list(self.received)


class SmtpServer:
    """An aiosmtpd ``Controller`` on a fixed loopback port that can be stopped and restarted."""

    def __init__(self, port: int | None = None) -> None:
        self.host = HOST
        self.port = port or free_port()
        self.handler = RecordingHandler()
        self._controller: Controller | None = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        assert self._controller is None, "already running"
        # A controller's event loop is closed when it stops, so each start needs a new one.
        controller = Controller(
            self.handler, hostname=self.host, port=self.port, server_hostname="smtp.test"
        )
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        assert not _listening(self.host, self.port), "the SMTP port is still open"

    @property
    def received(self) -> list[Received]:
        return self.handler.messages()

    def mail_config(self) -> dict[str, Any]:
        """Flask-Mail settings that send to this server for real."""
        return {
            "MAIL_SERVER": self.host,
            "MAIL_PORT": self.port,
            "MAIL_USE_TLS": False,
            "MAIL_USE_SSL": False,
            "MAIL_SUPPRESS_SEND": False,
        }


def _listening(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0
