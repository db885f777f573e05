"""systemd notification protocol (``sd_notify``): one datagram to ``$NOTIFY_SOCKET``.

``READY=1`` once serving, ``WATCHDOG=1`` at half of ``$WATCHDOG_USEC``, ``STOPPING=1`` on
shutdown, ``STATUS=...`` free text. Without ``$NOTIFY_SOCKET`` (not under systemd) every
call is a no-op. A socket path starting with ``@`` is in the abstract namespace.
"""

from __future__ import annotations

import os
import socket


def notify(message: str, environ: dict[str, str] | None = None) -> bool:
    """Send ``message`` (e.g. ``"READY=1"``); returns whether a datagram was sent."""
    env = os.environ if environ is None else environ
    address = env.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(address)
            sock.sendall(message.encode("utf-8"))
        except OSError:
            return False
    return True


def watchdog_interval(environ: dict[str, str] | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``$WATCHDOG_USEC``), or None when not asked.

    >>> watchdog_interval({"WATCHDOG_USEC": "20000000"})
    10.0
    >>> watchdog_interval({}) is None
    True
    """
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6
