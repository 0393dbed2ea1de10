"""Pure matching: a path relative to the inbox -> the jobs its first matching rule asks for."""

from __future__ import annotations

from pathlib import PurePosixPath

from wcmatch import glob

from .config import Config
from .jobs import JobSpec

_FLAGS = glob.GLOBSTAR | glob.DOTMATCH | glob.BRACE | glob.IGNORECASE

# Names that are never finished inputs: hidden files, browser and sync partials, editor backups.
TRANSIENT_PATTERNS = (
    "**/.*", "**/.*/**", "**/*.part", "**/*.tmp", "**/*.crdownload", "**/*.partial", "**/*.download",
    "**/~*", "**/*~", "**/*.syncthing.*", "**/.syncthing.*", "**/*.!sync", "**/*.filepart",
)


def _matches(relpath: str, patterns) -> bool:
    return glob.globmatch(relpath, list(patterns), flags=_FLAGS)


def is_transient(relpath: str) -> bool:
    return _matches(relpath, TRANSIENT_PATTERNS)


def targets(config: Config, relpath: str) -> tuple[JobSpec, ...]:
    """The jobs for this inbox-relative path: empty when ignored or when no rule matches."""
    relpath = PurePosixPath(relpath).as_posix()
    if config.ignore and _matches(relpath, config.ignore):
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
