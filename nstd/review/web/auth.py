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
