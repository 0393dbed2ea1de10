"""A state file whose folders moved: `mv ~/nstd /srv/nstd`, a share mounted elsewhere, an outbox
pointed at another disk with its files copied over.

The state names every file by its absolute path (the photo's input row, a result's image, log and
plot, a job's style images), and dozens of readers use those paths as they are. So the state also
records the folders it was written with, by role; a daemon started on folders that moved rewrites
every path under an old folder to the same place under the new one, in one transaction, before it
looks at a single file. Without it every result would be called deleted (its old path is gone) and
a photo dropped again painted again.
"""

from __future__ import annotations

import json
import time
from typing import Callable

from nstd.core.names import fs_bytes

from .records import NAME


def _moved(value: str, moves: list[tuple[str, str]]) -> str:
    for old, new in moves:
        if value == old or value.startswith(old + "/"):
            return new + value[len(old):]
    return value


def _moved_in(data, moves: list[tuple[str, str]]):
    """Every string in a JSON document that names a file under an old folder, moved."""
    if isinstance(data, str):
        return _moved(data, moves)
    if isinstance(data, list):
        return [_moved_in(v, moves) for v in data]
    if isinstance(data, dict):
        return {k: _moved_in(v, moves) for k, v in data.items()}
    return data


class Relocation:
    """The folders the state was written with, and the move of its paths when they change."""

    def follow_folders(self, folders: dict[str, str], moved: Callable[[str, str], bool]) -> list[dict]:
        """Record these folders (role -> absolute path); where a recorded one differs and `moved(old,
        new)` says its files went along, rewrite every path under it first. Returns the moves made:
        [{role, from, to}]."""
        recorded = self._get("folders") or {}
        changed = [{"role": role, "from": old, "to": folders[role]} for role, old in sorted(recorded.items())
                   if role in folders and old != folders[role] and moved(old, folders[role])]
        # The longest first: a folder inside another (the outbox inside the config's folder) moves as itself.
        moves = sorted(((m["from"], m["to"]) for m in changed), key=lambda m: -len(m[0]))
        with self._tx():
            if moves:
                self._move_paths(moves)
                self._put("relocated", {"when": time.time(), "moves": changed})
            self._put("folders", {**recorded, **folders})
        return changed

    def relocation(self) -> dict | None:
        """The last move of the folders this state followed (`nstd status`)."""
        return self._get("relocated")

    def _move_paths(self, moves: list[tuple[str, str]]) -> None:
        for row_id, path in self.db.execute("SELECT id, path FROM inputs").fetchall():
            new = _moved(path, moves)
            if new != path:
                self.db.execute(f"UPDATE inputs SET path={NAME} WHERE id=?", (fs_bytes(new), row_id))
        for row_id, spec, outputs in self.db.execute("SELECT id, spec, outputs FROM jobs").fetchall():
            new_spec = json.dumps(_moved_in(json.loads(spec), moves), sort_keys=True)
            new_outputs = json.dumps(_moved_in(json.loads(outputs), moves)) if outputs else outputs
            if new_spec != spec or new_outputs != outputs:
                self.db.execute("UPDATE jobs SET spec=?, outputs=? WHERE id=?", (new_spec, new_outputs, row_id))
