"""Who may act: one shared password, stored as a scrypt hash, and sessions with CSRF tokens.

The password is never stored: `nstd web-password` prints its hash for `web.password_hash`. A
login makes a random session token (an HttpOnly, SameSite=Strict cookie) with its own CSRF token,
which every form carries; both are compared in constant time. Sessions live in memory: a restart
logs everybody out, which is the safe direction.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Optional

SCHEME = "scrypt"
N, R, P = 2**14, 8, 1  # ~50 ms and 16 MiB per check: slow for a guesser, fine for a login
SESSION_SECONDS = 12 * 3600
COOKIE = "nstd_session"


def hash_password(password: str, salt: Optional[bytes] = None) -> str:
    if not password:
        raise ValueError("an empty password protects nothing")
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    b64 = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")
    return f"{SCHEME}${N}${R}${P}${b64(salt)}${b64(digest)}"


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_hash_format(stored: str) -> None:
    """Raise ValueError unless `stored` is what hash_password makes."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME or not all(p.isdigit() for p in parts[1:4]):
        raise ValueError("not a password hash from `nstd web-password` (scrypt$N$r$p$salt$hash)")
    _unb64(parts[4]), _unb64(parts[5])


def verify_password(password: str, stored: str) -> bool:
    _, n, r, p, salt, digest = stored.split("$")
    got = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                         dklen=len(_unb64(digest)), maxmem=256 * 2**20)
    return hmac.compare_digest(got, _unb64(digest))


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
