"""sd_notify: READY, STATUS, WATCHDOG and STOPPING for Type=notify; a no-op outside systemd."""

from __future__ import annotations

import os
import socket


class Notifier:
    def __init__(self):
        address = os.environ.get("NOTIFY_SOCKET")
        self.address = None
        if address:
            # A leading '@' names a socket in the abstract namespace.
            self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = os.environ.get("WATCHDOG_USEC")
        self.watchdog_seconds = int(usec) / 1e6 if usec and usec.isdigit() else None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, **fields: str) -> None:
        if not self.address:
            return
        message = "\n".join(f"{k.upper()}={v}" for k, v in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self.address)
                sock.sendall(message)
        except OSError:
            pass  # systemd gone or socket unusable: never a reason to stop working
