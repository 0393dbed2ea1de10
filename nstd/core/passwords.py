"""The web app's one shared password, stored only as a scrypt hash (`nstd web-password` prints it).

Here, below the config and the web app, because both need to know what a valid hash looks like.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Optional

SCHEME = "scrypt"
N, R, P = 2**14, 8, 1  # ~50 ms and 16 MiB per check: slow for a guesser, fine for a login


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
