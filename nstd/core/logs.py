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
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level_name, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


_renderer = structlog.dev.ConsoleRenderer()


def route_stdlib(level: int = logging.INFO) -> None:
    """Lines of libraries that log through `logging` (uvicorn's errors) rendered like ours."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processor=_renderer, foreign_pre_chain=[structlog.stdlib.add_logger_name, structlog.processors.add_log_level,
                                                structlog.processors.TimeStamper(fmt="iso", utc=True),
                                                structlog.processors.format_exc_info]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def get(name: str):
    return structlog.get_logger(name)
