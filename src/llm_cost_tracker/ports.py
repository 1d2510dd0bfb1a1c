"""Listen addresses checked before a server binds them, so a busy port is one clear line.

grpc's core prints its own "Failed to add port" lines and raises "Failed to bind ... set GRPC_VERBOSITY";
neither says which of our settings chose the address. Checking first costs one bind and close per
listener at start-up; a port taken in the moment between the check and the real bind still fails, with
the library's text.
"""

from __future__ import annotations

import errno
import socket

__all__ = ["PortUnavailable", "ensure_free"]


class PortUnavailable(RuntimeError):
    """A listener's address cannot be bound; the message names the flag and variable that set it."""

    def __init__(self, setting: str, address: str, reason: str) -> None:
        flag, env = "--" + setting.replace("_", "-"), "LCT_" + setting.upper()
        super().__init__(f"cannot listen on {address} for {flag}: {reason}; choose another address with "
                         f"{flag} HOST:PORT or {env}=HOST:PORT (port 0 picks a free one)")
        self.setting = setting
        self.address = address


def ensure_free(setting: str, address: str) -> None:
    """Raise :class:`PortUnavailable` if ``address`` (HOST:PORT, as in the settings) cannot be bound now."""
    host, _, port_text = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    port = int(port_text)
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortUnavailable(setting, address, "the port is in use by another process") from exc
            if exc.errno == errno.EACCES:
                raise PortUnavailable(setting, address, "permission denied (ports below 1024 need privileges)") from exc
            if exc.errno == errno.EADDRNOTAVAIL:
                raise PortUnavailable(setting, address, "no such address on this machine") from exc
            raise PortUnavailable(setting, address, exc.strerror or str(exc)) from exc
