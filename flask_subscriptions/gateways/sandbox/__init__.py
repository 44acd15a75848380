"""Sandbox Pay, the built-in test payment service: ``SandboxGateway().init_app(app)``."""

from __future__ import annotations

from .cards import TEST_CARDS, Behaviour, SandboxCard
from .service import LATENCY_ENV, SandboxGateway
from .storage import SandboxCharge, SetupSession

__all__ = [
    "LATENCY_ENV",
    "TEST_CARDS",
    "Behaviour",
    "SandboxCard",
    "SandboxCharge",
    "SandboxGateway",
    "SetupSession",
]
