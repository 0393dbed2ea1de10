"""structlog set-up: JSON lines off a terminal (journald, files), readable lines on one.

Under systemd each line starts with its syslog priority (`<3>` error, `<4>` warning, `<6>` info),
which journald reads by default (SyslogLevelPrefix=yes) and strips, so `journalctl -p warning`
finds the warnings and errors. Only when stderr is the journal's stream: files and terminals
get the lines as they were.
"""

from __future__ import annotations

import logging
import os
import sys

import structlog

from .bars import write_above_bars
from .names import shown_fields


SYSLOG_PRIORITY = {"critical": 2, "exception": 3, "error": 3, "warning": 4, "warn": 4, "info": 6, "debug": 7}


def to_journal() -> bool:
    """True when stderr is journald's stream: systemd sets JOURNAL_STREAM to its device:inode."""
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return os.environ.get("JOURNAL_STREAM") == f"{st.st_dev}:{st.st_ino}"


def _syslog_prefix(_logger, method: str, line: str) -> str:
    return f"<{SYSLOG_PRIORITY.get(method, 6)}>{line}"


class _PrefixedFormatter(structlog.stdlib.ProcessorFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return _syslog_prefix(None, record.levelname.lower(), super().format(record))


class _CurrentStderr:
    """Whatever sys.stderr is when a line is written, not when logging was set up (a test's capture,
    a redirect), so a replaced and closed stream is never written to; above a progress bar, if one
    is drawn there."""

    def write(self, text: str) -> int:
        write_above_bars(text, sys.stderr)
        return len(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(json: bool | None = None, level: str | None = None) -> None:
    if json is None:
        json = not sys.stderr.isatty()
    level_name = (level or os.environ.get("NSTD_LOG_LEVEL", "info")).upper()
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    global _renderer
    _renderer = renderer
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            shown_fields,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info if json else structlog.processors.StackInfoRenderer(),
            renderer,
            *([_syslog_prefix] if to_journal() else []),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level_name, logging.INFO)),
        # One write per line (the line and its newline together), so a bar is lifted once per line.
        logger_factory=structlog.WriteLoggerFactory(file=_CurrentStderr()),
        cache_logger_on_first_use=False,
    )


_renderer = structlog.dev.ConsoleRenderer()


def route_stdlib(level: int = logging.INFO) -> None:
    """Lines of libraries that log through `logging` (uvicorn's errors) rendered like ours."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter((_PrefixedFormatter if to_journal() else structlog.stdlib.ProcessorFormatter)(
        processor=_renderer, foreign_pre_chain=[structlog.stdlib.add_logger_name, structlog.processors.add_log_level,
                                                structlog.processors.TimeStamper(fmt="iso", utc=True),
                                                structlog.processors.format_exc_info]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def say_error(text: str) -> None:
    """A command's error for a person: as it is on a terminal, at error priority in the journal."""
    prefix = "<3>" if to_journal() else ""
    print("\n".join(prefix + line for line in text.splitlines()), file=sys.stderr)


def get(name: str):
    return structlog.get_logger(name)
