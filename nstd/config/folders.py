"""The folders' relations: each apart from the others, so the daemon is never fed its own files."""

from __future__ import annotations

from pathlib import Path


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or child.is_relative_to(parent)


def layout_problems(folders: dict[str, Path], state: Path, styles: dict) -> list[str]:
    """Folders that would feed the daemon its own files: each one apart from the others.

    Paths are compared resolved (symlinks followed), so a link cannot hide an overlap. An outbox in
    the inbox would repaint every result; an archive in it would re-take every archived photo; a
    style in it would be painted and archived away; a state folder in any of them would be moved
    or shown.
    """
    problems = []
    names = list(folders)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            pa, pb = folders[a], folders[b]
            if pa == pb:
                problems.append(f"{b}: is the same folder as {a} ({pa}); each needs its own")
            elif _inside(pa, pb) or _inside(pb, pa):
                inner, outer = (a, b) if _inside(pa, pb) else (b, a)
                problems.append(f"{inner}: inside the {outer} folder ({folders[inner]} in {folders[outer]}); "
                                "the folders must not contain one another")
    for name, folder in folders.items():
        if _inside(state.parent, folder):
            problems.append(f"state: inside the {name} folder ({state} in {folder}); keep it apart")
    for style, (refs, _) in styles.items():
        for ref in refs:
            if _inside(Path(ref.path), folders["inbox"]):
                problems.append(f"styles.{style}: style image inside the inbox ({ref.path}); it would be "
                                "taken as a photo and moved away")
    return problems
