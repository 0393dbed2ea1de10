"""Pure matching: a path relative to the inbox -> the jobs its first matching rule asks for."""

from __future__ import annotations

from pathlib import PurePosixPath

from nstd.config import Config
from nstd.core.jobs import JobSpec

from .walker import is_transient
from .walker import matches as _matches

__all__ = ["is_transient", "ignored", "targets", "rule_warnings"]


def ignored(config: Config, relpath: str) -> bool:
    """An `ignore:` pattern covers it: left alone, silently."""
    return bool(config.ignore) and _matches(PurePosixPath(relpath).as_posix(), config.ignore)


def targets(config: Config, relpath: str) -> tuple[JobSpec, ...]:
    """The jobs for this inbox-relative path: empty when ignored or when no rule matches."""
    relpath = PurePosixPath(relpath).as_posix()
    if ignored(config, relpath):
        return ()
    for rule in config.rules:
        if _matches(relpath, rule.patterns):
            return rule.jobs
    return ()


CATCH_ALL = {"**", "**/*", "*/**", "**/**"}


def rule_warnings(config: Config, inbox_paths: list[str]) -> list[str]:
    """Rules that can never match (after a catch-all) or match nothing in the inbox right now."""
    warnings = []
    caught_by = None
    for i, rule in enumerate(config.rules):
        if caught_by is not None:
            warnings.append(f"rules.{i}: never used: rules.{caught_by} before it matches every path")
            continue
        if CATCH_ALL & set(rule.patterns):
            caught_by = i
        elif inbox_paths and not any(_matches(p, rule.patterns) for p in inbox_paths):
            warnings.append(f"rules.{i}: matches none of the {len(inbox_paths)} files now in the inbox "
                            f"({', '.join(rule.patterns)})")
    return warnings
