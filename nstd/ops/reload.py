"""`nstd reload`: ask the running daemon to re-read its config, and say what it made of it.

`systemctl reload nstd` runs this (ExecReload), so systemd reports a refused config as a failed
reload naming the problem, instead of "Reloaded" while the journal alone says otherwise. The file
is checked here first (a bad one is refused without disturbing the daemon), then the daemon gets
SIGHUP and its answer is read from the state file.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Callable, Optional

from nstd.config import Config
from nstd.core.errors import ConfigError, NstdError
from nstd.store import Store

ANSWER_SECONDS = 60.0


def reload_daemon(config: Config, pid: Optional[int] = None, patience: float = ANSWER_SECONDS,
                  sleep: Callable[[float], None] = time.sleep) -> dict:
    """SIGHUP to the daemon on this config's state file; its outcome ({ok, problems}), or NstdError."""
    store = Store(config.state, readonly=True)
    try:
        if not store.daemon_running():
            raise NstdError(str(config.state), "no daemon runs on this state file: nothing to reload")
        pid = pid or (store.daemon_facts() or {}).get("pid")
        if not pid:
            raise NstdError(str(config.state), "the running daemon has not recorded its pid yet; try again")
        sent = time.time()
        os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            outcome = store.last_reload()
            if outcome and outcome.get("at", 0) >= sent:
                if not outcome["ok"]:
                    raise ConfigError(str(config.path), ["reload refused, the running config is kept:",
                                                         *outcome["problems"]])
                return outcome
            sleep(0.2)
        raise NstdError(str(config.state), f"the daemon (pid {pid}) did not answer the reload within "
                                           f"{patience:.0f} s; see its log")
    finally:
        store.close()
