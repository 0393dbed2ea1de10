"""Changing one value in a config file that people wrote: the line is replaced where it stands, so
their comments, order and layout stay, and the result is read back before it replaces the file."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import yaml

from nstd.core.errors import ConfigError

_SECTION = re.compile(r"^web:\s*(#.*)?$")
_TOP_LEVEL = re.compile(r"^[^\s#]")
_HASH_LINE = re.compile(r"^(?P<indent>\s+)password_hash:\s*(?P<value>[^#]*?)(?P<comment>\s+#.*)?$")


def set_web_password_hash(path: Path, hashed: str) -> str:
    """Put `hashed` as web.password_hash in the config at `path`, in place; returns what was done."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    value = f'"{hashed}"'
    starts = [i for i, line in enumerate(lines) if _SECTION.match(line)]
    if len(starts) > 1:
        raise ConfigError(str(path), [f"web: given twice, at lines {starts[0] + 1} and {starts[1] + 1}; merge them "
                                      "first"])
    if not starts:
        if any(line.startswith("web:") for line in lines):
            raise ConfigError(str(path), ["web: is written on one line ({...}); set password_hash there by hand"])
        lines += ["", "web:", f"  password_hash: {value}"]
        done = "added a web: section with password_hash"
    else:
        end = next((i for i in range(starts[0] + 1, len(lines)) if _TOP_LEVEL.match(lines[i])), len(lines))
        found = next((i for i in range(starts[0] + 1, end) if _HASH_LINE.match(lines[i])), None)
        if found is None:
            lines.insert(starts[0] + 1, f"  password_hash: {value}")
            done = f"added password_hash under web: (line {starts[0] + 2})"
        else:
            m = _HASH_LINE.match(lines[found])
            lines[found] = f"{m['indent']}password_hash: {value}{m['comment'] or ''}"
            done = f"set web.password_hash (line {found + 1})"
    new = "\n".join(lines) + "\n"
    if (yaml.safe_load(new) or {}).get("web", {}).get("password_hash") != hashed:
        raise ConfigError(str(path), ["could not place web.password_hash in this file's layout; set it by hand"])
    _replace(path, new)
    return done


def _replace(path: Path, text: str) -> None:
    """The new text under a temp name beside the file, with its mode, then renamed over it."""
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
