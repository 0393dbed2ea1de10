"""Pure matching: a path relative to the inbox -> the jobs its first matching rule asks for, and
why (`nstd rules`, the web app's uploads)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Optional

from nstd.config import Config
from nstd.core.images import IMAGE_SUFFIXES
from nstd.core.jobs import JobSpec

from .walker import TRANSIENT_PATTERNS, confine, is_transient
from .walker import matches as _matches

__all__ = ["is_transient", "ignored", "targets", "rule_warnings", "not_taken", "explain", "Explanation"]


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


def not_taken(config: Config, relpath: str) -> Optional[str]:
    """Why intake would never take this inbox path, before any rule is asked; None if it would."""
    relpath = PurePosixPath(relpath).as_posix()
    if is_transient(relpath):
        pattern = next(p for p in TRANSIENT_PATTERNS if _matches(relpath, [p]))
        return f"a temporary or hidden name ({pattern.removeprefix('**/')}): never read, as half-written files are not"
    if PurePosixPath(relpath).suffix.lower() not in IMAGE_SUFFIXES:
        return f"not named as a photo: the name must end in one of {', '.join(sorted(IMAGE_SUFFIXES))}"
    for i, pattern in enumerate(config.ignore):
        if _matches(relpath, [pattern]):
            return f"covered by ignore.{i} ({pattern}): left alone"
    return None


@dataclass(frozen=True)
class Explanation:
    """What the rules do with one inbox path."""
    relpath: str
    refusal: Optional[str]                      # why no rule is asked (not_taken), or outside the inbox
    verdicts: tuple[tuple[int, str, str], ...]  # (rule index, rule name, what that rule says)
    jobs: tuple[JobSpec, ...]                   # what the taking rule asks for


def explain(config: Config, photo: str) -> Explanation:
    """Which rule takes `photo` (a path inside the inbox, or a name relative to it) and why the
    others do not."""
    from .verdict import entry_refusal, file_refusal

    path = Path(photo)
    # The last component as it is: a link is judged as the link, as the daemon judges it; the folders
    # above it resolved, for an inbox reached through a linked home folder.
    where = Path(os.path.abspath(path))
    if not where.is_relative_to(config.inbox):
        where = Path(os.path.realpath(where.parent)) / where.name
    try:
        relpath = where.relative_to(config.inbox).as_posix()
    except ValueError:
        if path.is_absolute() or os.path.lexists(path):
            return Explanation(photo, f"outside the inbox ({config.inbox}): nstd never reads it", (), ())
        relpath, where = PurePosixPath(photo).as_posix(), config.inbox / photo
    refusal = not_taken(config, relpath)
    entry = confine(config.inbox, where) if os.path.lexists(where) else None
    if refusal is None and entry is not None:
        refusal = entry_refusal(entry)
        if refusal is None and targets(config, relpath):
            refusal = file_refusal(where, config.inbox, config.watch.max_file_mb * 10**6)
        refusal = refusal and f"{refusal}: the daemon moves it to failed/ with this reason"
    if refusal:
        return Explanation(relpath, refusal, (), ())
    verdicts, taken_by, jobs = [], None, ()
    for i, rule in enumerate(config.rules):
        hit = _matches(relpath, rule.patterns)
        if hit and taken_by is None:
            taken_by, jobs = i, rule.jobs
            verdicts.append((i, rule.name, f"takes it ({', '.join(rule.patterns)})"))
        elif hit:
            verdicts.append((i, rule.name, f"would match, but rules.{taken_by} comes first (first match wins)"))
        else:
            verdicts.append((i, rule.name, f"does not match {', '.join(rule.patterns)}"))
    return Explanation(relpath, None if taken_by is not None else "no rule matches it: it is left in the inbox",
                       tuple(verdicts), jobs)


_GLOB = re.compile(r"[*?\[{]")


def pattern_folders(patterns) -> list[str]:
    """The inbox folders rule patterns start with (`sea/**` -> sea), once each: where people drop."""
    folders = []
    for pattern in patterns:
        head = pattern.split("/")[0]
        if "/" in pattern and head and not _GLOB.search(head) and head not in (".", ".."):
            folders.append(head)
    return list(dict.fromkeys(folders))


def make_rule_folders(config: Config, log) -> None:
    """Make the inbox folders the rules name, so that a style added with its rule has its folder to
    drop into as soon as the config is read (at start, and on a reload)."""
    for folder in pattern_folders([p for rule in config.rules for p in rule.patterns]):
        target = config.inbox / folder
        if target.exists() or target.is_symlink():
            continue
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # a courtesy: photos dropped elsewhere are taken all the same
            log.warning("cannot make the inbox folder a rule names", folder=str(target), error=str(e))
            continue
        log.info("made the inbox folder a rule names", folder=str(target))
