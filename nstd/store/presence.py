"""Whether a daemon runs on this state file, and what it is looking at.

The lock says whether a daemon is alive (the kernel releases it when the process dies); the record
beside it says which daemon (pid, host, version, since when), when it last showed life, which
files it has seen in the inbox but not yet taken (settling, inspected), and what it made of its
last reload. `nstd status`, `nstd reload` and the web app read it; only the daemon writes it.
"""

from __future__ import annotations

import json
from typing import Optional

from .statefile import StateFile


class Presence(StateFile):
    def record_daemon(self, facts: dict) -> None:
        self._put("daemon", facts)

    def heartbeat(self, when: float, arriving: dict) -> None:
        facts = self.daemon_facts() or {}
        self._put("daemon", {**facts, "heartbeat": when})
        self._put("arriving", arriving)

    def install_id(self) -> str:
        """This install's identity, made once with its state file: what it claims a Redis database with."""
        known = self._get("install")
        if known is None:
            import uuid
            known = uuid.uuid4().hex
            self.db.execute("INSERT OR IGNORE INTO settings (key, value) VALUES ('install', ?)", (json.dumps(known),))
            known = self._get("install")
        return known

    def record_reload(self, outcome: dict) -> None:
        """What the daemon made of its last SIGHUP (`nstd reload` waits for it)."""
        self._put("reload", outcome)

    def last_reload(self) -> Optional[dict]:
        return self._get("reload")

    def record_rebuild(self, facts: dict) -> None:
        """That this state file was rebuilt from the folders, a damaged one set aside (`nstd status`)."""
        self._put("rebuilt", facts)

    def rebuild_facts(self) -> Optional[dict]:
        return self._get("rebuilt")

    def record_folder_faults(self, faults: dict) -> None:
        """The folders the daemon cannot write now, by role, with why and the room there is (`nstd status`)."""
        self._put("folder_faults", faults)

    def folder_faults(self) -> dict:
        return self._get("folder_faults") or {}

    def daemon_facts(self) -> Optional[dict]:
        return self._get("daemon")

    def arriving(self) -> dict:
        return self._get("arriving") or {"count": 0, "first": []}

    def _put(self, key: str, value) -> None:
        self.db.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                        "SET value=excluded.value", (key, json.dumps(value)))

    def _get(self, key: str):
        row = self.db.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None
