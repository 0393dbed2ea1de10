"""structlog set-up: JSON lines off a terminal (journald, files), readable lines on one."""

from __future__ import annotations

import logging
import os
import sys

import structlog

from .names import shown_fields


def configure(json: bool | None = None, level: str | None = None) -> None:
    if json is None:
        json = not sys.stderr.isatty()
    level_name = (level or os.environ.get("NSTD_LOG_LEVEL", "info")).upper()
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            shown_fields,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info if json else structlog.processors.StackInfoRenderer(),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level_name, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get(name: str):
    return structlog.get_logger(name)
