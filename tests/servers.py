"""Servers the tests (and the benchmarks) start as processes of their own: a free port to
give one, and a way to stop one that always ends it."""

from __future__ import annotations

import signal
import socket
import subprocess
from typing import Any

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def stop(process: subprocess.Popen[Any], timeout: float = 30) -> None:
    """SIGTERM, so a server shuts down as it would in production; SIGKILL if it has not
    within ``timeout`` seconds."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
