"""Who may act: one shared password, stored as a scrypt hash, and sessions with CSRF tokens.

The password is never stored: `nstd web-password` prints its hash for `web.password_hash`. A
login makes a random session token (an HttpOnly, SameSite=Strict cookie) with its own CSRF token,
which every form carries; both are compared in constant time. Sessions live in memory: a restart
logs everybody out, which is the safe direction.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Optional

from nstd.core.passwords import check_hash_format, hash_password, verify_password  # noqa: F401 (the web's API)

SESSION_SECONDS = 12 * 3600
COOKIE = "nstd_session"


@dataclass
class Session:
    csrf: str
    expires: float


class Sessions:
    def __init__(self, clock=time.time):
        self.clock = clock
        self.live: dict[str, Session] = {}

    def start(self) -> tuple[str, Session]:
        self._expire()
        token = secrets.token_urlsafe(32)
        session = self.live[token] = Session(secrets.token_urlsafe(32), self.clock() + SESSION_SECONDS)
        return token, session

    def get(self, token: Optional[str]) -> Optional[Session]:
        if not token:
            return None
        # A dict lookup by a 256-bit random token: its timing tells a guesser nothing usable.
        session = self.live.get(token)
        if session is None or session.expires < self.clock():
            return None
        return session

    def end(self, token: Optional[str]) -> None:
        self.live.pop(token or "", None)

    def _expire(self) -> None:
        now = self.clock()
        for token in [t for t, s in self.live.items() if s.expires < now]:
            del self.live[token]


def csrf_ok(session: Optional[Session], given: Optional[str]) -> bool:
    return session is not None and bool(given) and hmac.compare_digest(session.csrf, given)


FREE_TRIES = 5            # wrong passwords from one address before it has to wait
FREE_TRIES_IN_ALL = 50    # wrong passwords from all addresses together, with no right one between
MAX_WAIT_SECONDS = 900.0
MAX_ADDRESSES = 10_000    # addresses remembered; the oldest are forgotten first


class LoginGuard:
    """Slows password guessing: after FREE_TRIES wrong passwords an address waits 2 s, then 4, 8, ...
    up to 15 minutes, before any password of it is tried at all (the right one too: a guess that
    is not checked cannot succeed). Wrong passwords from everywhere together do the same to every
    address, so many addresses do not make many guessers. A right password clears its address."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.failures: dict[str, tuple[int, float]] = {}  # address -> (wrong tries, when the last was)
        self.in_all = (0, 0.0)

    @staticmethod
    def _wait(count: int, last: float, free: int, now: float) -> float:
        if count < free:
            return 0.0
        return max(0.0, last + min(2.0 ** (count - free + 1), MAX_WAIT_SECONDS) - now)

    def wait(self, address: str) -> float:
        """Seconds before a password from `address` is tried; 0 when it may be tried now."""
        now = self.clock()
        mine = self._wait(*self.failures.get(address, (0, 0.0)), FREE_TRIES, now)
        return max(mine, self._wait(*self.in_all, FREE_TRIES_IN_ALL, now))

    def failed(self, address: str) -> None:
        now = self.clock()
        count, _ = self.failures.pop(address, (0, 0.0))
        self.failures[address] = (count + 1, now)  # re-inserted: the dict's order is by last failure
        self.in_all = (self.in_all[0] + 1, now)
        while len(self.failures) > MAX_ADDRESSES:
            self.failures.pop(next(iter(self.failures)))

    def succeeded(self, address: str) -> None:
        self.failures.pop(address, None)
        self.in_all = (0, 0.0)
